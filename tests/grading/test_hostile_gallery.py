"""Hostile submissions against isolated grading: each is the untouched stubs plus one attack and scores 0.

The attacks (``attacks.py``) try to rewrite or fake results.json, read or
import the answers, the hidden checks and the reference data (by code, or
by links, FIFOs and hard links in the submission folder), patch pytest or
the grading plugin, find the grader's objects, kill the grader, fork-bomb,
fill the disk, outlive their time limit, return lying objects, forge huge
replies on the grader's channel, leave files and System V IPC objects for
a later check or submission, import the forbidden modules, print escape
sequences into the feedback and reach the network. Each grading must give
exactly the honest score (0), show that the attack ran and was stopped,
leave results.json whole and free of control characters, leak no secret
file's text, keep the grader under 3 GiB of memory, and leave no process,
file or IPC object of the sandbox user behind.

Graded three ways: in this process as ``warblr grade run`` grades (the
plugin with ``--isolate``, sharing one fork server for the whole test
session), through the ``warblr grade run`` command, and through the
Gradescope package's ``run_autograder`` laid out as Gradescope runs it. The
default pass grades a representative few attacks in this process; the
slow pass grades every attack all three ways, but for those that only spend
resources and read no path (``Attack.reads_no_paths``: the fork bomb, the
disk filler, the sleeper): where the lab lies cannot change them, so they go
through ``run_autograder`` (which runs ``warblr grade run``) and not through
``warblr grade run`` from the checkout as well. Every way grades the same five
checks (``SELECTION``), chosen so that every attack's code runs. These need root and the user
nobody (CI runs as root); elsewhere they skip and say why.
"""

import base64
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

import pytest

from warblr.grading.autograder import build_autograder
from warblr.grading.cleanup import process_table
from warblr.grading.sandbox import world_writable_folders

from test_hostile_student import peak_memory, reset_peak_memory  # noqa: I001 -- a test module beside this one

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
GALLERY_TIMEOUT = 3.0
#: One check per module (two that call the hostile functions): every attack runs, the run stays short.
SELECTION = ["test_resampling.py::test_to_mono_keeps_mono", "test_resampling.py::test_resample_same_rate_is_identity",
             "test_classify.py::test_pool_matches_solution", "test_logmel.py::test_periodic_hann",
             "test_embedding.py::test_postprocess_matches_solution"]
#: The same checks chosen on a grading command's line (its pytest arguments, after ``--``): a whole run of
#: the 50 checks on stubs takes 12-16 s on 2 cores, these 5 take 5 s, and every attack runs in both.
SELECTION_ARGS = ["-k", " or ".join(node.split("::")[1] for node in SELECTION)]
#: Peak resident memory any grading process may reach, bytes (a grading command measured from outside).
GRADER_PEAK_LIMIT = 3 << 30
#: How far grading may grow the resident size of the process it runs in, bytes (pytest's own size, whatever
#: earlier tests left in it, is not the grader's; the forged 100 MB reply once grew it by 5 GB).
GRADER_GROWTH_LIMIT = 1 << 30
pytestmark = pytest.mark.usefixtures("needs_uid_separation")


def _load_attacks():
    spec = importlib.util.spec_from_file_location("warblr_gallery_attacks", Path(__file__).with_name("attacks.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.ATTACKS


ATTACKS = _load_attacks()


def gallery(*, default_only=False):
    """The attacks as parameters: the ``default`` ones in the fast pass, the rest marked slow."""
    return [pytest.param(entry, id=entry.name, marks=() if entry.default or default_only else pytest.mark.slow)
            for entry in ATTACKS if entry.default or not default_only]


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it gets."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.server.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.server.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def results_folder():
    """A results folder the sandbox user could reach if nothing else stopped it (others may traverse it)."""
    folder = Path(tempfile.mkdtemp(prefix="warblr-gallery-results-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def fill(text, *, port, token, results, lab):
    for key, value in {"port": port, "token": token, "results": results, "lab": lab}.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def hostile_submission(folder, attack, *, port, token, results, lab=ROOT):
    """Write the stubs plus ``attack`` into the new ``folder``, with its links, FIFOs and hard links."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    for module in ("__init__", "resampling", "logmel", "embedding", "classify"):
        code = fill(attack.code, port=port, token=token, results=results, lab=lab) if module == "resampling" else ""
        (folder / f"{module}.py").write_text((EXERCISES / f"{module}.py").read_text() + code)
    for name, entry in attack.entries:
        path = folder / name
        if entry[0] == "link":
            path.symlink_to(fill(entry[1], port=port, token=token, results=results, lab=lab))
        elif entry[0] == "hardlink":
            os.link(folder / entry[1], path)
        elif entry[0] == "fifo":
            os.mkfifo(path)
        elif entry[0] == "copy":
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / entry[1], path)
        elif entry[0] == "extension":
            build_extension(path, (ROOT / entry[1]).read_text())
        elif entry[0] == "utf7":
            path.write_bytes(utf7_hiding(path.read_text(), (ROOT / entry[1]).read_text()))
        elif entry[0] == "escaped":
            path.write_bytes(escape_hiding(path.read_text(), (ROOT / entry[1]).read_text()))
    return folder


def escape_hiding(visible, hidden):
    """``visible`` with ``hidden`` as ``\\xNN`` escapes in a comment, under ``# coding: unicode_escape`` on line 2.

    The Latin-1 byte on line 1 makes ``tokenize`` give up while the import's own tokenizer reads on."""
    escaped = "".join(f"\\x{byte:02x}" for byte in ("\n" + hidden).encode("ascii"))
    visible = visible.replace("\\", "\\\\")  # the codec reads a backslash pair as one backslash
    return b"# R\xe9sum\xe9 of the method\n# coding: unicode_escape\n" + visible.encode("ascii") + \
        b"\n# checksum: " + escaped.encode("ascii") + b"\n"


def utf7_hiding(visible, hidden):
    """``visible`` under a UTF-7 coding line, with ``hidden`` in a comment that Python decodes into lines of code."""
    block = base64.b64encode(("\n" + hidden).encode("utf-16-be")).rstrip(b"=")  # UTF-7's own form of the text
    return b"# coding: utf-7\n" + visible.encode("utf-7") + b"\n# checksum: +" + block + b"-\n"


#: A C extension module whose import runs a Python text in the module's namespace.
EXTENSION_C = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "%(name)s", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_%(name)s(void) {
    PyObject *module = PyModule_Create(&definition), *ran;
    if (!module) return NULL;
    PyDict_SetItemString(PyModule_GetDict(module), "__builtins__", PyEval_GetBuiltins());
    ran = PyRun_String(%(source)s, Py_file_input, PyModule_GetDict(module), PyModule_GetDict(module));
    if (!ran) { Py_DECREF(module); return NULL; }
    Py_DECREF(ran);
    return module;
}
"""


def build_extension(path, source):
    """Compile ``path`` (a file name with an extension-module suffix): a module that runs ``source`` on import."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    include = Path(sysconfig.get_paths()["include"])
    if not compiler or not (include / "Python.h").is_file():
        pytest.skip(f"building the attack's extension module needs a C compiler and {include}/Python.h")
    name = path.name.split(".")[0]
    literal = json.dumps(source)  # a JSON string of ASCII text is a valid C string literal
    c_file = path.parent / f"{name}_build.c"
    c_file.write_text(EXTENSION_C % {"name": name, "source": literal})
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", f"-I{include}", str(c_file), "-o", str(path)], check=True,
                   capture_output=True, timeout=120)
    c_file.unlink()


def nobody_uid():
    return pwd.getpwnam("nobody").pw_uid


def nobody_processes():
    """Processes of the sandbox user that are this test's: below this process, or orphans adopted by init.

    Other graders on a shared machine run workers as nobody too; theirs are
    below their own processes and do not count.
    """
    uid, table = nobody_uid(), process_table()

    def ours(pid):
        if table[pid][0] == 1:
            return True
        seen = set()
        while pid not in seen and pid in table:
            seen.add(pid)
            pid = table[pid][0]
            if pid == os.getpid():
                return True
        return False

    return [pid for pid, (_, owner) in table.items() if owner == uid and ours(pid)]


def nobody_ipc_objects():
    """The System V IPC objects of the sandbox user on this machine (``table:id``)."""
    uid, found = nobody_uid(), []
    for table in ("shm", "sem", "msg"):
        with open(f"/proc/sysvipc/{table}") as handle:
            header, *rows = [line.split() for line in handle if line.strip()]
        found += [f"{table}:{row[1]}" for row in rows if int(dict(zip(header, row))["uid"]) == uid]
    return found


def leftovers(token):
    """Files and folders whose name holds ``token``, anywhere in a world-writable folder."""
    found = []
    for folder in world_writable_folders() + ["/tmp/ray"]:
        for parent, dirs, files in os.walk(folder):
            found += [os.path.join(parent, name) for name in dirs + files if token in name]
    return sorted(set(found))


def control_characters(results):
    texts = [results.get("output", "")] + [test.get("output", "") + test.get("name", "") for test in results["tests"]]
    return sorted({repr(c) for text in texts for c in text if c in "\x1b\x07\r\x00\x9b"})


def assert_stopped(attack, results, results_path, *, token, listener, lab=ROOT, peak=None, growth=None):
    """The attack scored exactly 0, ran, was stopped, leaked nothing and left nothing behind."""
    outputs = "\n".join(test["output"] for test in results["tests"])
    assert results["max_score"] > 0 and results["score"] == 0, (attack.name, results["score"], outputs[:3000])
    assert all(test["status"] == "failed" for test in results["tests"])
    assert any(text in outputs for text in attack.expect), (
        f"{attack.name}: no sign the attack ran ({attack.expect!r}): {outputs[:3000]}")
    for marker in ("LEAKED", "TAMPERED"):
        assert marker not in outputs, f"{attack.name} succeeded: {outputs[:3000]}"
    for secret in attack.secrets:
        lines = [line.strip() for line in Path(fill(secret, port=0, token=token, results=results_path, lab=lab))
                 .read_text(errors="replace").splitlines() if len(line.strip()) > 12]
        assert lines and not [line for line in lines if line in outputs + results["output"]], \
            f"{attack.name}: text of {secret} reached the feedback"
    assert not control_characters(results), f"{attack.name}: control characters in results.json"
    assert json.loads(Path(results_path).read_text()) == results  # the file is the grader's, whole
    assert not nobody_processes(), f"{attack.name} left processes of the sandbox user running"
    assert not leftovers(token), f"{attack.name} left files: {leftovers(token)}"
    assert not nobody_ipc_objects(), f"{attack.name} left System V IPC objects: {nobody_ipc_objects()}"
    assert listener.connections == 0, f"{attack.name} reached a TCP server of the grader's machine"
    if peak is not None:
        print(f"\n{attack.name}: grading peaked at {peak >> 20} MiB resident")
        assert peak < GRADER_PEAK_LIMIT, f"{attack.name}: a grading process peaked at {peak >> 20} MiB"
    if growth is not None:
        print(f"\n{attack.name}: grading grew its process by {growth >> 20} MiB resident")
        assert growth < GRADER_GROWTH_LIMIT, f"{attack.name}: grading grew its process by {growth >> 20} MiB"


def network_isolated(results):
    return "a new, empty network namespace" in results["output"]


@pytest.mark.parametrize("entry", gallery())
def test_attack_scores_zero_in_isolated_grading(entry, grade_in_process, results_folder, listener, tmp_path):
    token = secrets.token_hex(4)
    results_path = results_folder / "results.json"
    folder = hostile_submission(tmp_path / "submission", entry, port=listener.port, token=token,
                                results=results_path)
    reset_peak_memory()
    before = peak_memory()
    outcome = grade_in_process(folder, SELECTION, timeout=GALLERY_TIMEOUT, results_path=results_path)
    growth = peak_memory() - before
    results = outcome["results"]
    if entry.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace: the grader says so, and the network stays open")
    assert_stopped(entry, results, results_path, token=token, listener=listener, growth=growth)


def test_isolation_is_reported_in_the_results(stubs_with, grade_in_process, results_folder):
    results_path = results_folder / "results.json"
    outcome = grade_in_process(stubs_with({}), ["test_resampling.py::test_to_mono_keeps_mono"],
                               results_path=results_path)
    output = outcome["results"]["output"]
    assert "worker runs as nobody" in output
    # The whole lab is hidden when the Python in use lives outside it (a venv elsewhere), else its answers folder.
    answers = ROOT if not Path(sys.prefix).resolve().is_relative_to(ROOT.resolve()) else ROOT / "solutions"
    hidden = next(line for line in output.splitlines() if "hidden from the worker: " in line)
    assert str(answers.resolve()) in hidden.split("hidden from the worker: ", 1)[1].split(", "), hidden
    assert "WARNING" not in output, output
    assert "private per check (a fresh tmpfs each): " in output and "NOT private" not in output, output
    assert "System V IPC: a new namespace per check" in output
    assert "their package folders are hidden from the worker" in output and str(ROOT / "warblr") in output


# ---------------------------------------------------------------- through the commands


#: Runs a command and prints the peak resident size of its processes (the grader, its fork server ...).
PEAK_OF_CHILDREN = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
                    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss << 10)); "
                    "sys.exit(code)")


def measured(command, **kwargs):
    """Run ``command``; ``(completed run, peak resident bytes of its processes)``."""
    with tempfile.TemporaryDirectory() as folder:
        peak_file = Path(folder) / "peak"
        run = subprocess.run([sys.executable, "-c", PEAK_OF_CHILDREN, str(peak_file), *command],
                             capture_output=True, text=True, timeout=900, **kwargs)
        assert peak_file.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
        return run, int(peak_file.read_text())


def grade_command(submission, results_path, *extra):
    run, peak = measured([sys.executable, "-m", "warblr", "grade", "run", "--root", str(ROOT), "--impl",
                          str(submission), "--grade-json", str(results_path), "--timeout", f"{GALLERY_TIMEOUT:g}",
                          *extra, "--", *SELECTION_ARGS])
    return run, json.loads(Path(results_path).read_text()), peak


@pytest.mark.slow
@pytest.mark.parametrize("entry", [param for param in gallery() if not param.values[0].reads_no_paths])
def test_every_attack_scores_zero_under_warblr_grade_run(entry, results_folder, listener, tmp_path):
    token = secrets.token_hex(4)
    results_path = results_folder / "results.json"
    folder = hostile_submission(tmp_path / "submission", entry, port=listener.port, token=token,
                                results=results_path)
    run, results, peak = grade_command(folder, results_path)
    if entry.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace")
    assert "score: 0 / " in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert not [c for c in run.stdout if c in "\x1b\x07\x00"], "control characters reached the terminal"
    assert_stopped(entry, results, results_path, token=token, listener=listener, peak=peak)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    out = tmp_path_factory.mktemp("autograder") / "package"
    return build_autograder(out, source=ROOT, timeout=GALLERY_TIMEOUT)["out"]


@pytest.mark.slow
@pytest.mark.parametrize("entry", gallery())
def test_every_attack_scores_zero_under_run_autograder(entry, autograder, tmp_path, listener):
    """Laid out as Gradescope runs it: the package in AUTOGRADER_ROOT/source, a copy of run_autograder at the root."""
    token = secrets.token_hex(4)
    root = tmp_path / "autograder_root"
    shutil.copytree(autograder, root / "source")
    shutil.copy2(autograder / "run_autograder", root / "run_autograder")
    results_path = root / "results" / "results.json"
    hostile_submission(root / "submission", entry, port=listener.port, token=token, results=results_path,
                       lab=root / "source" / "lab")
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), WARBLR_PYTHON=sys.executable)
    run, peak = measured(["bash", str(root / "run_autograder"), *SELECTION_ARGS], env=env, cwd=root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(results_path.read_text())
    if entry.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace")
    assert_stopped(entry, results, results_path, token=token, listener=listener, lab=root / "source" / "lab",
                   peak=peak)
