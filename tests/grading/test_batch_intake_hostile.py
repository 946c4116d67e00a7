"""Hostile archives, folders and Gradescope metadata against ``warblr grade batch``'s intake. All fast.

One test per red-team finding: each submission that cannot be unpacked or
read must become that submission's refusal (naming the member or file), never
an exception that stops the batch; the Gradescope metadata is parsed as
hostile. Nothing here grades: the tests call :func:`find_submissions`,
:func:`extract_zip`, :func:`take_in` and :func:`read_gradescope_metadata`.
"""

import errno
import os
import resource
import zipfile
from dataclasses import replace

import pytest

from warblr.errors import InvalidArgumentError, SubmissionError
from warblr.grading import intake, submissions
from warblr.grading.intake import IntakeLimits, take_in
from warblr.grading.submissions import extract_zip, find_submissions, read_gradescope_metadata, safe_key

from test_batch_units import MODULES, make_zip  # noqa: I001 -- a test module beside this one


def course_with(tmp_path, members):
    """A folder of submissions: ``alice/`` (fine) and ``mallory.zip`` (the modules and ``members``)."""
    course = tmp_path / "course"
    (course / "alice").mkdir(parents=True)
    for name, data in MODULES.items():
        (course / "alice" / name).write_bytes(data)
    make_zip(course / "mallory.zip", list(MODULES.items()) + members)
    return course


def refused_only_mallory(entries, reason):
    """Alice is kept and unpacked; Mallory's zip is refused for ``reason``, with a printable message."""
    assert [(e.key, bool(e.problem)) for e in entries] == [("alice", False), ("mallory", True)]
    assert reason in entries[1].problem and entries[1].folder is None
    assert entries[1].problem.isprintable()
    return entries[1].problem


# 1. A file `a` and then a member `a/b.py` or `a/`: the folder cannot be made.

@pytest.mark.parametrize("members", [[("a", b"x"), ("a/b.py", b"y")], [("a", b"x"), ("a/", b"")]],
                         ids=["file-then-member-inside", "file-then-folder"])
def test_a_file_then_a_folder_of_its_name_refuses_that_zip_only(tmp_path, members):
    entries = find_submissions(course_with(tmp_path, members), scratch=tmp_path / "scratch")
    problem = refused_only_mallory(entries, "also")
    assert "'a/b.py'" in problem or "'a/'" in problem
    with pytest.raises(SubmissionError, match="which the archive also holds as a file|is also a file"):
        extract_zip(tmp_path / "course" / "mallory.zip", tmp_path / "direct")
    assert not (tmp_path / "direct").exists()


# 2. Names longer than a file system allows: a 300-character folder, a path over 4096 bytes.

@pytest.mark.parametrize("name, reason", [
    ("d" * 300 + "/x.py", "a name longer than 255 bytes"),
    ("f" * 300 + ".py", "a name longer than 255 bytes"),
    ("/".join(["d" * 200] * 25) + "/x.py", "nested deeper than"),
], ids=["long-folder", "long-file", "path-over-4096-bytes"])
def test_a_name_too_long_for_the_file_system_refuses_that_zip_only(tmp_path, name, reason):
    entries = find_submissions(course_with(tmp_path, [(name, b"x")]), scratch=tmp_path / "scratch")
    refused_only_mallory(entries, reason)


def test_a_file_system_error_while_unpacking_is_that_zips_refusal(tmp_path, monkeypatch):
    """Any OSError of one member (here EIO on open) is a refusal naming the member, not a crash."""
    course = course_with(tmp_path, [("boom.py", b"x")])
    real_open = open

    def failing_open(path, *args, **kwargs):
        if str(path).endswith("boom.py"):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    entries = find_submissions(course, scratch=tmp_path / "scratch")
    monkeypatch.undo()
    assert "member 'boom.py' refused: cannot be unpacked (Input/output error)" in \
        refused_only_mallory(entries, "boom.py")


# 3. Thousands of empty folders: one descriptor per folder until the walk ended (EMFILE).

def test_intake_caps_the_folders(tmp_path):
    for number in range(201):
        (tmp_path / f"d{number:04}").mkdir()
    with pytest.raises(SubmissionError, match="more than 200 folders"):
        take_in(tmp_path)


def test_intake_holds_a_descriptor_per_level_not_per_folder(tmp_path):
    many = tmp_path / "many"  # 160 folders, two levels: the walk must not hold one descriptor each
    for number in range(150):
        (many / f"d{number // 15}" / f"e{number}").mkdir(parents=True)
    (many / "d0" / "e0" / "logmel.py").write_bytes(b"x = 1\n")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 40, hard))
    try:
        taken = take_in(many)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert list(taken.files) == ["d0/e0/logmel.py"]


def test_intake_turns_any_os_error_into_a_refusal_naming_the_file(tmp_path, monkeypatch):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "logmel.py").write_bytes(b"x = 1\n")
    (folder / "boom.py").write_bytes(b"y = 2\n")
    real_open = os.open

    def failing_open(path, *args, **kwargs):
        if str(path).endswith("boom.py"):
            raise OSError(errno.EIO, "Input/output error")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(intake.os, "open", failing_open)
    with pytest.raises(SubmissionError, match=r"submission refused: boom.py: cannot be read \(Input/output error\)"):
        take_in(folder)


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_intake_and_unpacking_messages_carry_no_control_characters(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    name = "x\x1b]0;PWNED\x07\x1b[2K\n## heading.py"
    (folder / name).write_bytes(b"#" * 101)
    with pytest.raises(SubmissionError) as caught:
        take_in(folder, limits=IntakeLimits(max_file_bytes=100))
    assert str(caught.value).isprintable() and "\\x1b" in str(caught.value)
    entries = find_submissions(course_with(tmp_path, [(name, b"#" * 101), (name, b"")]), scratch=tmp_path / "sc")
    assert "\x1b" not in refused_only_mallory(entries, "appears twice")


# 4. A 300-character student id: `.staging/staged/<key>` could not be made.

def test_a_long_student_id_gives_a_short_unique_key(tmp_path):
    export = tmp_path / "export"
    ids = ["9" * 300, "9" * 299 + "8"]
    metadata = "".join(f"submission_{n}:\n  :submitters:\n  - :name: M\n    :sid: '{sid}'\n"
                       for n, sid in enumerate(ids, 1))
    for n in (1, 2):
        (export / f"submission_{n}").mkdir(parents=True)
    (export / "submission_metadata.yml").write_text(metadata)
    keys = [entry.key for entry in find_submissions(export, scratch=tmp_path / "scratch")]
    assert len(set(keys)) == 2 and all(len(key) <= submissions.MAX_KEY and key.startswith("9" * 40) for key in keys)
    for key in keys:
        (tmp_path / "staged" / key).mkdir(parents=True)
    assert len(safe_key("\u00e9" * 1000)) <= submissions.MAX_KEY and safe_key("ada") == "ada"


# 5. Gradescope metadata: billion laughs, duplicate keys, odd types, a huge file.

def laughs(levels):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, levels + 1)]
    return "\n".join(lines) + f"\nsubmission_1:\n  :submitters:\n  - :name: *a{levels}\n    :sid: '1'\n"


@pytest.mark.parametrize("text, reason", [
    (laughs(3), "anchors and aliases"),  # 3 levels: harmless to the old code, which accepted it
    ("submission_1:\n  :submitters:\n  - :name: Alice\n    :sid: '1'\n"
     "submission_1:\n  :submitters:\n  - :name: Mallory\n    :sid: '2'\n", "duplicate key 'submission_1'"),
    ("submission_1:\n  :submitters:\n  - :name: A\n    :sid: '1'\n    :sid: '2'\n", "duplicate key ':sid'"),
    ("1:\n  :late: true\n'1':\n  :late: false\n", "1: listed twice"),
    ("submission_1:\n  :submitters:\n  - {<<: {':sid': '7'}, ':name': Y}\n", "merge keys"),
    ("submission_1:\n  :submitters:\n  - :name: [1, 2]\n", "submission_1: submitter 1: :name: expected text"),
    ("submission_1:\n  :submitters:\n  - :name: M\n    :sid: true\n", ":sid: expected text, got bool"),
    ("submission_1:\n  :submitters:\n  - :name: M\n    :email: 3.5\n", ":email: expected text, got float"),
    ("submission_1:\n  :submitters: Mallory\n", ":submitters: expected a list"),
    ("submission_1:\n  :late: 'no'\n", ":late: expected true or false"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than"),
], ids=["aliases", "duplicate-submission", "duplicate-field", "same-folder", "merge-key", "name-list", "sid-bool",
        "email-float", "submitters-text", "late-text", "deep-nesting"])
def test_hostile_gradescope_metadata_is_refused_naming_the_file(tmp_path, text, reason):
    path = tmp_path / "submission_metadata.yml"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match="submission_metadata.yml") as caught:
        read_gradescope_metadata(path)
    assert reason in str(caught.value) and caught.value.parameter == "submissions"


def test_gradescope_metadata_is_size_capped_and_its_text_fields_one_line(tmp_path, monkeypatch):
    path = tmp_path / "submission_metadata.yml"
    path.write_text("submission_1:\n  :submitters:\n  - :name: \"Eve\\n# Injected\\x1b[2J\"\n    :sid: 42\n"
                    + "#" * 1000 + "\n")
    (students, late), = read_gradescope_metadata(path).values()
    assert (students[0].id, students[0].name, late) == ("42", "Eve # Injected", None)
    monkeypatch.setattr(submissions, "MAX_METADATA_BYTES", 1000, raising=False)
    with pytest.raises(InvalidArgumentError, match="larger than 1000 bytes"):
        read_gradescope_metadata(path)


# 6. Zip bombs: a student's zip is unpacked within intake's limits, counting the bytes inflated.

def test_a_student_zip_bomb_stops_at_intakes_limits(tmp_path):
    per_file = IntakeLimits().max_file_bytes
    bomb = make_zip(tmp_path / "bomb.zip", [(f"pad{n}.bin", bytes(per_file + 1)) for n in range(3)])
    with pytest.raises(SubmissionError, match=f"'pad0.bin' refused: inflates past {per_file} bytes"):
        extract_zip(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    wide = make_zip(tmp_path / "wide.zip", [(f"f{n}.py", b"") for n in range(IntakeLimits().max_files + 1)])
    with pytest.raises(SubmissionError, match=f"more than {IntakeLimits().max_files} files"):
        extract_zip(wide, tmp_path / "wide")
    folders = make_zip(tmp_path / "folders.zip", [(f"d{n}/", b"") for n in range(1000)])
    with pytest.raises(SubmissionError, match="folders"):
        extract_zip(folders, tmp_path / "folders")
    skipped = make_zip(tmp_path / "git.zip", [(f".git/objects/{n}", b"x") for n in range(500)] + [("logmel.py", b"")])
    assert [p.name for p in extract_zip(skipped, tmp_path / "git").iterdir()] == ["logmel.py"]  # never written


def test_a_bad_submission_inside_a_course_archive_costs_only_that_submission(tmp_path, monkeypatch):
    members = [("export/submission_metadata.yml", b"submission_1:\n  :submitters:\n  - :name: Ada\n    :sid: '42'\n"
                b"submission_2:\n  :submitters:\n  - :name: Mallory\n    :sid: '66'\n")]
    members += [(f"export/submission_{n}/{name}", data) for n in (1, 2, 3) for name, data in MODULES.items()]
    members += [("export/submission_2/a", b"x"), ("export/submission_2/a/b.py", b"y"),
                ("export/submission_3/big.py", b"#" * 5000)]
    archive = make_zip(tmp_path / "export.zip", members)
    monkeypatch.setattr(submissions, "COURSE_ARCHIVE", submissions.ArchiveLimits(max_group_bytes=4000),
                        raising=False)
    entries = {entry.key: entry for entry in find_submissions(archive, scratch=tmp_path / "scratch")}
    assert sorted(entries) == ["42", "66", "submission_3"] and not entries["42"].problem
    assert "'export/submission_2/a/b.py' refused" in entries["66"].problem
    assert "inflates past 4000 bytes" in entries["submission_3"].problem
    assert (entries["42"].folder / "logmel.py").read_bytes() == MODULES["logmel.py"]



# 7. One student's submission inside a course's export must not stop the batch by its member count or its bytes
# (red team: 50,001 empty files, or 4,200 members of 1 MiB + 1 byte, in submission_2/ refused the whole export).

def course_export(tmp_path, hostile, *, honest=(1, 3)):
    """``export/submission_<n>/``: the modules in the honest ones, ``hostile`` ``[(name, bytes)]`` in submission_2."""
    members = [(f"export/submission_{n}/{name}", data) for n in honest for name, data in MODULES.items()]
    members += [(f"export/submission_2/{name}", data) for name, data in hostile]
    return make_zip(tmp_path / "export.zip", sorted(members, key=lambda member: member[0]))


def course_caps(monkeypatch, **caps):
    """Small caps for a course's archive (archive-wide and per submission), so the tests stay fast."""
    monkeypatch.setattr(submissions, "COURSE_ARCHIVE", replace(submissions.COURSE_ARCHIVE, **caps))


def opened_members(monkeypatch):
    """The names of the members zipfile opens (inflates) from now on."""
    opened, real_open = [], zipfile.ZipFile.open

    def recording_open(self, name, *args, **kwargs):
        opened.append(getattr(name, "filename", name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    return opened


def only_submission_2_refused(tmp_path, archive, reason):
    entries = {entry.key: entry for entry in find_submissions(archive, scratch=tmp_path / "scratch")}
    assert sorted(entries) == ["submission_1", "submission_2", "submission_3"]
    assert not entries["submission_1"].problem and not entries["submission_3"].problem
    assert reason in entries["submission_2"].problem and entries["submission_2"].folder is None
    for key in ("submission_1", "submission_3"):  # the honest ones, before and after it, are unpacked
        assert (entries[key].folder / "logmel.py").read_bytes() == MODULES["logmel.py"]
    return entries["submission_2"].problem


def test_a_submission_past_its_member_cap_costs_only_that_submission(tmp_path, monkeypatch):
    course_caps(monkeypatch, max_members=40, max_group_members=10)
    junk = [(f"junk/f{n:02}.txt", b"") for n in range(45)]  # more than the whole archive's cap on its own
    archive = course_export(tmp_path, list(MODULES.items()) + junk)
    problem = only_submission_2_refused(tmp_path, archive, "'submission_2' holds more than 10 members")
    assert "member 'export/submission_2/junk/f08.txt' refused" in problem  # its 11th member, in name order
    unpacked = tmp_path / "scratch" / "archive" / "export" / "submission_2"
    assert (unpacked / "junk" / "f07.txt").exists() and not (unpacked / "junk" / "f08.txt").exists()
    assert not (unpacked / "junk" / "f09.txt").exists() and not (unpacked / "logmel.py").exists()  # passed over


def test_a_submission_past_its_byte_cap_many_times_costs_only_that_submission(tmp_path, monkeypatch):
    course_caps(monkeypatch, max_total_bytes=20_000, max_group_bytes=4_000)
    pads = [(f"pad{n:02}.bin", bytes(1001)) for n in range(30)]  # 30,030 bytes: 7 times its cap, past the total
    archive = course_export(tmp_path, list(MODULES.items()) + pads)
    opened = opened_members(monkeypatch)
    problem = only_submission_2_refused(tmp_path, archive, "'submission_2' inflates past 4000 bytes")
    assert "member 'export/submission_2/pad03.bin' refused" in problem
    # The member past the cap is the last of its submission inflated: the 26 after it are never opened.
    assert [name for name in opened if "/pad" in name] == [f"export/submission_2/pad{n:02}.bin" for n in range(4)]


@pytest.mark.parametrize("members, reason", [
    ([("pad.bin", bytes(3_000))], "the archive inflates past 20000 bytes"),  # each submission within its caps
    ([(f"pad{n}.bin", bytes(2_000)) for n in range(9)], "the archive inflates past 20000 bytes"),  # each past them
    ([(f"f{n}.py", b"") for n in range(9)], "the archive unpacks more than 40 members"),
    # 13 each: past its cap of 10, and 156 in all, under the directory's (4 x 40) that refuses a bigger one unread
    ([(f"f{n}.py", b"") for n in range(13)], "the archive unpacks more than 40 members"),
], ids=["bytes-within-caps", "bytes-past-caps", "members-within-caps", "members-past-caps"])
def test_a_bomb_spread_over_many_submissions_still_refuses_the_whole_archive(tmp_path, monkeypatch, members, reason):
    """12 submissions: what each inflates, even past its own caps, and what each unpacks count for the archive."""
    course_caps(monkeypatch, max_members=40, max_group_members=10, max_total_bytes=20_000, max_group_bytes=4_000)
    archive = make_zip(tmp_path / "export.zip", [(f"export/submission_{n}/{name}", data)
                                                 for n in range(12) for name, data in members])
    with pytest.raises(SubmissionError, match=reason):
        find_submissions(archive, scratch=tmp_path / "scratch")
    assert not (tmp_path / "scratch" / "archive").exists()


def test_no_one_submission_within_its_caps_can_reach_the_course_archives_caps():
    course, chunk = submissions.COURSE_ARCHIVE, submissions.CHUNK_BYTES  # how far a refused member inflates
    assert course.max_group_members and course.max_group_bytes
    assert course.max_members >= 50 * course.max_group_members
    assert course.max_total_bytes >= 50 * (course.max_group_bytes + chunk)
    assert course.max_group_members >= 2 * (IntakeLimits().max_files + IntakeLimits().max_folders)
    assert course.max_group_bytes >= IntakeLimits().max_total_bytes  # intake, not unpacking, refuses a big one


def test_a_file_beside_the_submissions_is_charged_to_itself(tmp_path, monkeypatch):
    course_caps(monkeypatch, max_group_bytes=4_000)
    archive = course_export(tmp_path, list(MODULES.items()), honest=(1, 3))
    with zipfile.ZipFile(archive, "a") as added:
        added.writestr("export/notes.bin", bytes(5_000))
    entries = {entry.key: entry for entry in find_submissions(archive, scratch=tmp_path / "scratch")}
    assert [key for key, entry in sorted(entries.items()) if entry.problem] == ["notes.bin"]
    assert "'notes.bin' inflates past 4000 bytes" in entries["notes.bin"].problem
    assert all((entries[f"submission_{n}"].folder / "logmel.py").is_file() for n in (1, 2, 3))


def test_lazy_unpacking_holds_one_students_zip_at_a_time(tmp_path):
    course = course_with(tmp_path, [("pad.bin", bytes(IntakeLimits().max_file_bytes + 1))])
    make_zip(course / "bob.zip", [(f"bob/{name}", data) for name, data in MODULES.items()])
    entries = find_submissions(course, scratch=tmp_path / "scratch", lazy=True)
    assert [(e.key, e.problem) for e in entries] == [("alice", ""), ("bob", ""), ("mallory", "")]
    assert not (tmp_path / "scratch").exists()  # nothing unpacked yet
    with entries[1].unpacked() as folder:
        assert folder.name == "bob" and sorted(take_in(folder).files) == sorted(MODULES)
    assert not (tmp_path / "scratch" / "students" / "bob").exists()
    with pytest.raises(SubmissionError, match="inflates past"), entries[2].unpacked():
        pass
    with entries[0].unpacked() as folder:
        assert folder == course / "alice"
