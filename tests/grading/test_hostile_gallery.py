"""Hostile submissions against isolated grading: each is the untouched stubs plus one attack and scores 0.

The attacks (``attacks.py``, one test per entry) try to rewrite or fake
results.json, read or import the answers, the hidden checks and the
reference data, patch pytest or the grading plugin, find the grader's
objects, kill the grader, fork-bomb, fill the disk, outlive their time limit,
return lying objects and reach the network. Each grading must give exactly
the honest score (0), show that the attack ran and was stopped, and leave no
process of the sandbox user and no file of the attack behind.

Graded three ways: in this process as ``warblr grade run`` grades (the
plugin with ``--isolate``; fast, every attack), through the ``warblr grade
run`` command, and through the Gradescope package's ``run_autograder``
(both on every check; marked slow). These need root and the user nobody
(CI runs as root); elsewhere they skip and say why.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from warblr.grading.autograder import build_autograder
from warblr.grading.sandbox import process_table

ROOT = Path(__file__).resolve().parents[2]
GALLERY_TIMEOUT = 3.0
#: One check per module (two that call the hostile functions): every attack runs, the run stays short.
SELECTION = ["test_resampling.py::test_to_mono_keeps_mono", "test_resampling.py::test_resample_same_rate_is_identity",
             "test_classify.py::test_pool_matches_solution", "test_logmel.py::test_periodic_hann",
             "test_embedding.py::test_postprocess_matches_solution"]
TEMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
pytestmark = pytest.mark.usefixtures("needs_uid_separation")


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


def hostile_submission(stubs_with, attack, *, port, token, results, lab=ROOT):
    code = attack.code
    for key, value in {"port": port, "token": token, "results": results, "lab": lab}.items():
        code = code.replace("{" + key + "}", str(value))
    return stubs_with({"resampling": code})


def nobody_processes():
    import pwd

    uid = pwd.getpwnam("nobody").pw_uid
    return [pid for pid, (_, owner) in process_table().items() if owner == uid]


def leftovers(token):
    return [str(path) for folder in TEMP_FOLDERS for path in Path(folder).glob(f"warblr-gallery-{token}*")]


def assert_stopped(attack, results, results_path, *, token, listener):
    """The attack scored exactly 0, ran, was stopped, and left nothing behind."""
    outputs = "\n".join(test["output"] for test in results["tests"])
    assert results["max_score"] > 0 and results["score"] == 0, (attack.name, results["score"], outputs[:3000])
    assert all(test["status"] == "failed" for test in results["tests"])
    assert any(text in outputs for text in attack.expect), (
        f"{attack.name}: no sign the attack ran ({attack.expect!r}): {outputs[:3000]}")
    for marker in ("LEAKED", "TAMPERED"):
        assert marker not in outputs, f"{attack.name} succeeded: {outputs[:3000]}"
    assert json.loads(Path(results_path).read_text()) == results  # the file is the grader's, whole
    assert not nobody_processes(), f"{attack.name} left processes of the sandbox user running"
    assert not leftovers(token), f"{attack.name} left files: {leftovers(token)}"
    assert listener.connections == 0, f"{attack.name} reached a TCP server of the grader's machine"


def network_isolated(results):
    return "a new, empty network namespace" in results["output"]


def test_attack_scores_zero_in_isolated_grading(attack, stubs_with, grade_in_process, results_folder, listener):
    token = secrets.token_hex(4)
    results_path = results_folder / "results.json"
    folder = hostile_submission(stubs_with, attack, port=listener.port, token=token, results=results_path)
    outcome = grade_in_process(folder, SELECTION, timeout=GALLERY_TIMEOUT, results_path=results_path)
    results = outcome["results"]
    if attack.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace: the grader says so, and the network stays open")
    assert_stopped(attack, results, results_path, token=token, listener=listener)


def test_isolation_is_reported_in_the_results(stubs_with, grade_in_process, results_folder):
    results_path = results_folder / "results.json"
    outcome = grade_in_process(stubs_with({}), ["test_resampling.py::test_to_mono_keeps_mono"],
                               results_path=results_path)
    output = outcome["results"]["output"]
    assert "worker runs as nobody" in output
    assert "hidden from the worker" in output and str(ROOT / "solutions") in output
    assert "WARNING" not in output, output


# ---------------------------------------------------------------- through the commands


def grade_command(submission, results_path, *extra):
    run = subprocess.run([sys.executable, "-m", "warblr", "grade", "run", "--root", str(ROOT), "--impl",
                          str(submission), "--grade-json", str(results_path), "--timeout", f"{GALLERY_TIMEOUT:g}",
                          *extra], capture_output=True, text=True, timeout=900)
    return run, json.loads(Path(results_path).read_text())


@pytest.mark.parametrize("name", ["atexit_rewrites_results", "forked_child_outlives_the_check"])
def test_results_attacks_score_zero_under_warblr_grade_run(name, galleries, stubs_with, results_folder, listener):
    attack = next(a for a in galleries["attack"] if a.name == name)
    token = secrets.token_hex(4)
    results_path = results_folder / "results.json"
    folder = hostile_submission(stubs_with, attack, port=listener.port, token=token, results=results_path)
    run, results = grade_command(folder, results_path, "--", "-q", "-k", "to_mono")
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert "score: 0 / " in run.stdout
    assert_stopped(attack, results, results_path, token=token, listener=listener)


@pytest.mark.slow
def test_every_attack_scores_zero_under_warblr_grade_run(attack, stubs_with, results_folder, listener):
    token = secrets.token_hex(4)
    results_path = results_folder / "results.json"
    folder = hostile_submission(stubs_with, attack, port=listener.port, token=token, results=results_path)
    run, results = grade_command(folder, results_path)
    if attack.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace")
    assert_stopped(attack, results, results_path, token=token, listener=listener)


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    out = tmp_path_factory.mktemp("autograder") / "package"
    return build_autograder(out, source=ROOT, timeout=GALLERY_TIMEOUT)["out"]


@pytest.mark.slow
def test_every_attack_scores_zero_under_run_autograder(attack, autograder, stubs_with, tmp_path, listener):
    token = secrets.token_hex(4)
    root = tmp_path / "autograder_root"
    results_path = root / "results" / "results.json"
    submission = hostile_submission(stubs_with, attack, port=listener.port, token=token, results=results_path,
                                    lab=autograder)
    (root / "submission").mkdir(parents=True)
    for path in submission.glob("*.py"):
        (root / "submission" / path.name).write_text(path.read_text())
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), WARBLR_PYTHON=sys.executable)
    run = subprocess.run(["bash", str(autograder / "run_autograder")], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(results_path.read_text())
    if attack.needs_network_namespace and not network_isolated(results):
        pytest.skip("this kernel refuses a new network namespace")
    assert_stopped(attack, results, results_path, token=token, listener=listener)
