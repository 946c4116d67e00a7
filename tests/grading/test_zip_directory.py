"""A zip's central directory is counted before zipfile reads it into objects.

``zipfile.ZipFile`` builds an object per directory entry before anything
can look at the count: a hostile zip of hundreds of thousands of 46-byte
entries (no data at all) cost the grader over a hundred megabytes before
its member cap refused it, and millions cost gigabytes. The directory is
now walked first (:func:`warblr.grading.submissions.directory_entries`),
agreeing with zipfile on real archives (prepended data, a comment, zip64
end records), and an archive past the cap is refused unread.
"""

import struct
import tracemalloc
import zipfile
from dataclasses import replace

import pytest

from warblr.errors import SubmissionError
from warblr.grading import submissions
from warblr.grading.submissions import directory_entries, extract_zip


def directory_only_zip(path, count):
    """A zip holding a central directory of ``count`` entries (one-byte names) and no data: what a bomb needs."""
    entry = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)
    directory = b"".join(entry + bytes([97 + n % 26]) for n in range(count))
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), len(directory), 0, 0)
    path.write_bytes(directory + end)
    return path


def real_zip(path, count, *, prefix=b"", comment=b""):
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(count):
            archive.writestr(f"folder/f{n}.py", b"x = 1\n")
        archive.comment = comment
    if prefix:  # a self-extracting stub before the archive: zipfile finds the directory all the same
        path.write_bytes(prefix + path.read_bytes())
    return path


@pytest.mark.parametrize("kind", ["plain", "prepended", "comment", "zip64"])
def test_the_count_agrees_with_zipfile(tmp_path, monkeypatch, kind):
    if kind == "zip64":  # zipfile writes zip64 end records past 65,535 entries; lower its limit to get one here
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 5)
    path = real_zip(tmp_path / "a.zip", 12, prefix=b"#!stub\n" * 40 if kind == "prepended" else b"",
                    comment=b"hello" * 20 if kind == "comment" else b"")
    if kind == "zip64":
        assert zipfile.stringEndArchive64 in path.read_bytes()
    with open(path, "rb") as file:
        assert directory_entries(file, stop_after=100) == len(zipfile.ZipFile(path).infolist()) == 12
        assert directory_entries(file, stop_after=5) == 6  # stops just past the cap


def test_a_directory_of_hundreds_of_thousands_of_entries_is_refused_unread(tmp_path):
    bomb = directory_only_zip(tmp_path / "bomb.zip", 300_000)  # 14 MB on disk
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionError, match="more than 50000 members in its directory") as refused:
            extract_zip(bomb, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB"  # zipfile's objects for it took 112 MiB (and 10 s)
    assert refused.value.path == str(bomb) and not (tmp_path / "out").exists()


def test_a_course_archive_may_hold_skipped_names_up_to_its_slack(tmp_path):
    limits = replace(submissions.COURSE_ARCHIVE, max_members=10)
    names = [f"export/submission_1/.git/objects/{n:03}" for n in range(10 * submissions.DIRECTORY_SLACK - 2)]
    within = tmp_path / "within.zip"
    with zipfile.ZipFile(within, "w") as archive:
        archive.writestr("export/submission_1/logmel.py", b"x = 1\n")
        for name in names:
            archive.writestr(name, b"")
    extract_zip(within, tmp_path / "out", limits=limits, problems=[])  # .git is skipped, not counted
    assert (tmp_path / "out" / "export" / "submission_1" / "logmel.py").is_file()
    past = directory_only_zip(tmp_path / "past.zip", 10 * submissions.DIRECTORY_SLACK + 1)
    with pytest.raises(SubmissionError, match=f"more than {10 * submissions.DIRECTORY_SLACK} members in its directory"):
        extract_zip(past, tmp_path / "out2", limits=limits, problems=[])


def test_a_file_without_an_end_record_is_not_a_readable_zip(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(SubmissionError, match="not a readable zip file"):
        extract_zip(path, tmp_path / "out")
