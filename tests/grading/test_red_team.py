"""Attacks a red-team review found against isolated grading (Dec 2026), each closed and kept closed here.

- The grader's own VGGish builder, preloaded in every worker, was a ready
  answer to ``build_vggish`` (``sys.modules["warblr.grading.probes"]``, no
  import statement for the scan or the blocker to see). It read every layer
  off a complete state_dict, which was thought enough; but the check itself
  loads torchvggish's complete state_dict into the student's model, whose
  ``load_state_dict`` handed it to the builder (13/13, stop 37). The worker
  no longer imports the probes at all: their text comes with each probe
  request, so a check that asks for none has no builder to take.
- A worker that died mid-call left its files in the scratch folder, where
  the next check's worker found them; the working folder sat on the real
  disk with no size cap; a 1,500-deep folder chain made the grader's
  ``shutil.rmtree`` raise ``RecursionError`` (pytest's INTERNALERROR, the
  rest of the checks unrun, the sandbox folder left on disk); and a key
  added to the sandbox user's kernel keyring outlived the check and the
  grading (no namespace isolates keyrings). The working folder is now a
  private size-capped tmpfs per check, the grader empties scratch after any
  worker end with a walk that neither recurses nor builds long paths, and
  a seccomp filter refuses the keyring calls.

(The speed checks' timed inputs, which a submission could work out during
the untimed first call, are in ``test_speed_checks.py``.)
"""

import os
import subprocess

import pytest

from warblr.grading import cleanup

ISOLATED = pytest.mark.usefixtures("needs_uid_separation")  # graded as warblr grade run grades: root, nobody

#: build_vggish taken from the grader's probe module (the review's proof of concept).
PROBE_STEAL = '''

def build_vggish():
    import sys

    import torch

    probes = sys.modules["warblr.grading.probes"]
    saved = torch.nn.Module.load_state_dict
    torch.nn.Module.load_state_dict = lambda self, *args, **kwargs: None
    try:
        shell = probes.vggish_network({})
    finally:
        torch.nn.Module.load_state_dict = saved
    return type(shell)()
'''

#: build_vggish from the grader's builder fed the check's own state_dict (red-team review, stop 37): the check
#: loads torchvggish's weights into the student's model, whose load_state_dict hands them to the builder.
PROBE_FED = '''

def build_vggish():
    import sys

    from torch import nn

    class Shell(nn.Module):
        def load_state_dict(self, state, strict=True, assign=False):
            where = {where!r}
            probes = sys.modules[where] if where != "__main__" else sys.modules["__main__"].probes
            self.net = probes.vggish_network(state)
            self.features, self.embeddings = self.net.features, self.net.embeddings
            return self.net.load_state_dict(state)

        def forward(self, x):
            return self.net(x)

    return Shell()
'''

#: The first check's worker leaves a note, a deep folder chain and a key, then dies mid-call; the second
#: check's worker reports what it finds and what it may do, in its error message.
LEAVES_AND_DIES = '''

_KEY_TYPE, _KEY_NAME = b"user", b"warblr-red-team"


def _keyring(call, *args):
    import ctypes
    import platform

    numbers = {"x86_64": {"add_key": 248, "request_key": 249}, "aarch64": {"add_key": 217, "request_key": 218}}
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(numbers[platform.machine()][call], *args)
    return result, ctypes.get_errno()


def to_mono(waveform):
    import os

    with open("../carry.txt", "w") as note:
        note.write("from the check before")
    name = "d" * 200
    for _ in range(1500):  # deeper than shutil.rmtree's recursion and longer than PATH_MAX
        os.mkdir(name)
        os.chdir(name)
    with open("bottom", "wb") as bottom:
        bottom.write(b"x" * 4096)
    _keyring("add_key", _KEY_TYPE, _KEY_NAME, b"secret", 6, -4)  # KEY_SPEC_USER_KEYRING
    os._exit(3)


def resample(waveform, orig_sr, target_sr):
    import errno
    import os

    found = sorted(os.listdir(".."))
    key, key_errno = _keyring("request_key", _KEY_TYPE, _KEY_NAME, None, 0)
    written, why = 0, "no error"
    try:
        with open("fill", "wb") as fill:
            block = b"x" * (1 << 20)
            while written < 512:
                fill.write(block)
                fill.flush()
                written += 1
    except OSError as exc:
        why = errno.errorcode.get(exc.errno, str(exc.errno))
    raise RuntimeError(f"REPORT found={found} key={key} key_errno={errno.errorcode.get(key_errno)} "
                       f"wrote_mib={written} then={why}")
'''


@ISOLATED
def test_the_graders_vggish_builder_is_no_answer_to_build_vggish(stubs_with, grade_in_process):
    folder = stubs_with({"embedding": PROBE_STEAL}, name="probe_steal")
    outcome = grade_in_process(folder, ["test_embedding.py::test_build_vggish_state_dict_matches_torchvggish"])
    [result] = outcome["results"]["tests"]
    assert result["score"] == 0, result["output"]
    assert "KeyError" in result["output"], result["output"]  # no probes module in a worker that asked for none


@ISOLATED
@pytest.mark.parametrize("where", ["warblr.grading.probes", "__main__"])
def test_the_graders_vggish_builder_is_not_in_a_worker_that_asked_for_no_probe(stubs_with, grade_in_process, where):
    folder = stubs_with({"embedding": PROBE_FED.format(where=where)}, name="probe_fed")
    outcome = grade_in_process(folder, ["test_embedding.py::test_build_vggish_state_dict_matches_torchvggish",
                                        "test_embedding.py::test_embeddings_match_torchvggish"])
    for result in outcome["results"]["tests"]:  # 4 + 6 points with the builder preloaded in every worker
        assert result["score"] == 0, result["output"]
        assert ("KeyError" if where != "__main__" else "AttributeError") in result["output"], result["output"]


@ISOLATED
def test_nothing_a_worker_leaves_reaches_the_next_check_and_the_working_folder_is_capped(stubs_with,
                                                                                      grade_in_process):
    folder = stubs_with({"resampling": LEAVES_AND_DIES}, name="leaves_and_dies")
    outcome = grade_in_process(folder, ["test_resampling.py::test_to_mono_keeps_mono",
                                        "test_resampling.py::test_resample_same_rate_is_identity"])
    assert outcome["exit_code"] in (0, 1), outcome  # no INTERNALERROR (3): every check ran
    first, second = outcome["results"]["tests"]
    assert first["score"] == 0 and second["score"] == 0
    report = second["output"][second["output"].index("REPORT"):].splitlines()[0]
    # Its own working folder only: no note, no chain, nothing of the dead worker's.
    found = report.split("found=")[1].split(" key=")[0]
    assert "carry.txt" not in found and "d" * 200 not in second["output"], report
    assert " key=-1 key_errno=EPERM " in report, report  # the keyring calls are refused
    wrote = int(report.split("wrote_mib=")[1].split()[0])
    assert report.endswith("then=ENOSPC") and wrote <= 128, report  # the 128 MiB cap of the private tmpfs


def test_the_graders_walk_empties_any_tree_without_recursion_or_long_paths(tmp_path):
    """The walk behind scratch cleaning and the fallback file removal: 1,500 nested folders of 200-character
    names (300 kB of path), 2,000 siblings, a link to a folder outside (followed by nothing)."""
    root, outside = tmp_path / "scratch", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "kept").write_text("not the worker's")
    (root / "link").symlink_to(outside)
    (root / "file").write_text("x")
    try:
        for number in range(2000):
            (root / "wide" / f"d{number}").mkdir(parents=True)
        handle = os.open(root, os.O_RDONLY)
        try:
            for _ in range(1500):
                os.mkdir("d" * 200, dir_fd=handle)
                deeper = os.open("d" * 200, os.O_RDONLY, dir_fd=handle)
                os.close(handle)
                handle = deeper
            os.close(os.open("bottom", os.O_WRONLY | os.O_CREAT, dir_fd=handle))
        finally:
            os.close(handle)
        assert cleanup.empty_folder(root) == 2 + 2001 + 1501
        assert list(root.iterdir()) == [] and (outside / "kept").read_text() == "not the worker's"
        cleanup.remove_tree(root)
        assert not root.exists()
    finally:  # pytest's own clean-up of old temporary folders recurses too: never leave it this tree
        subprocess.run(["rm", "-rf", "--", str(root)], check=False)


def test_the_fallback_removal_deletes_only_the_sandbox_users_recent_files(tmp_path):
    mine, theirs = tmp_path / "grader.txt", tmp_path / "deep"
    mine.write_text("the grader's")
    theirs.mkdir()
    (theirs / "student.txt").write_text("left behind")
    uid = os.getuid()
    assert cleanup.remove_files_of(uid + 1, [tmp_path]) == 0  # another user's: untouched
    assert cleanup.remove_files_of(uid, [tmp_path], since=mine.stat().st_mtime + 3600) == 0  # too old
    assert cleanup.remove_files_of(uid, [tmp_path]) == 3
    assert list(tmp_path.iterdir()) == []
