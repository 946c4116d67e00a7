"""``warblr fetch`` against a real HTTP server on 127.0.0.1 that speaks the hosts' formats.

The server (``http.server`` in a thread) serves small fake sets the way the
real hosts do: the zip of ``wav/<itemid>.wav``, the label CSV, and the
host's metadata document (archive.org's ``/metadata/<item>`` JSON or
Zenodo's record JSON) that publishes the archive's size and MD5. It honours
``Range`` and can drop connections, ignore ranges or answer errors on
purpose. Nothing here talks to any other host (an autouse fixture refuses it).
"""

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import soundfile as sf

from warblr import cli
from warblr.errors import DatasetError, InvalidArgumentError, OutputError
from warblr.lab import fetch as fetch_module
from warblr.lab.dataset import read_dataset
from warblr.errors import ChecksumError, FetchError
from warblr.lab.download import download
from warblr.lab.fetch import MANIFEST_NAME, SETS, STAGING_SUFFIX, describe_sets, fetch, verify_fetched

FAST = {"progress": False, "retry_wait": 0, "timeout": 10}

#: Item ids shaped like each set's real ones.
IDS = {
    "warblrb10k": ["759808e5-f824-401e-9058", "8a4b3c2d-1e0f-4a9b-8c7d", "0c603a84-2e93-47d1-af3d",
                   "e9f165f2-630a-4de8-b2b0", "b8e6e3aa-2e50-4b37-968d"],
    "ff1010bird": ["64486", "1044", "188031", "20693", "7151"],
    "birdvox-dcase-20k": ["00053d90-e4b9-4045-a2f1-f39efc90cfa9", "000db435-a40f-4ad9-a74e-d1af284d2c44",
                          "001059c0-e04f-42fc-a8e2-11aad24dc6fb", "00106202-f61e-467d-a80f-070d90421952",
                          "00129593-77ca-40b2-a512-75d178071250"],
}
DATASET_IDS = {"warblrb10k": "warblrb10k", "ff1010bird": "ff1010bird", "birdvox-dcase-20k": "BirdVox-DCASE-20k"}


# ----------------------------------------------------------------------------- the local server


class Site:
    """What the test server serves, what it was asked, and the faults it plays."""

    def __init__(self):
        self.files = {}
        self.log = []                 # (path, Range header or None)
        self.drop_after = {}          # path -> [bytes of body sent before closing, times left]
        self.status = {}              # path -> HTTP status, or "drop" to close without an answer
        self.ignore_range = set()
        self.redirects = {}           # path -> path to send the client to (archive.org redirects downloads)
        self.gates = {}               # path -> threading.Event the answer waits for
        self.held = threading.Event()  # set when a request is waiting at a gate
        self.url = None

    def requests_for(self, name):
        return [rng for path, rng in self.log if path == f"/{name}"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        site = self.server.site
        path = urlsplit(self.path).path
        wanted = self.headers.get("Range")
        site.log.append((path, wanted))
        status = site.status.get(path)
        if status == "drop":
            self.close_connection = True
            return
        if status is not None:
            self.send_error(status)
            return
        if path in site.gates:
            site.held.set()
            site.gates[path].wait(30)
        if path in site.redirects:
            self.send_response(302)
            self.send_header("Location", site.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = site.files.get(path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if wanted and path not in site.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        drop = site.drop_after.get(path)
        if drop and drop[1] > 0:
            drop[1] -= 1
            payload = payload[:drop[0]]
            self.close_connection = True
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.site = Site()
    server.site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server.site
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch):
    """Every connection these tests make goes to 127.0.0.1: a real host is never contacted."""
    real = socket.create_connection

    def local_only(address, *args, **kwargs):
        assert address[0] in ("127.0.0.1", "localhost"), f"test tried to reach {address[0]}"
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", local_only)


# ----------------------------------------------------------------------------- fake sets


def wav_bytes(seed):
    buffer = io.BytesIO()
    signal = 0.1 * np.random.default_rng(seed).standard_normal(1600)
    sf.write(buffer, signal, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def labels_csv(name, ids):
    return "itemid,datasetid,hasbird\n" + "".join(f"{i},{DATASET_IDS[name]},{k % 2}\n"
                                                  for k, i in enumerate(ids))


def metadata_document(name, archive_name, data):
    """The host's metadata JSON, as archive.org or Zenodo publishes it (with neighbours, as the real ones have)."""
    host, md5 = SETS[name].host, hashlib.md5(data).hexdigest()
    if isinstance(host, fetch_module.ArchiveOrgItem):
        return {"metadata": {"identifier": host.item},
                "files": [{"name": f"{host.item}_archive.torrent", "size": "1234", "md5": "0" * 32},
                          {"name": archive_name, "source": "original", "size": str(len(data)), "md5": md5,
                           "sha1": hashlib.sha1(data).hexdigest()}]}
    return {"id": int(host.record), "files": [{"key": archive_name, "size": len(data), "checksum": f"md5:{md5}",
                                               "links": {"self": f"https://zenodo.org/api/records/x/{archive_name}"}}]}


def publish(site, name="warblrb10k", *, members=None, ids=None, labels=None, served=None, document=None):
    """Put a fake ``name`` on the site; returns the archive bytes. ``served`` replaces the bytes actually sent."""
    bird_set = SETS[name]
    ids = IDS[name] if ids is None else ids
    if members is None:
        members = {f"wav/{item_id}.wav": wav_bytes(k) for k, item_id in enumerate(ids)}
    data = zip_bytes(members)
    site.files[f"/{bird_set.archive}"] = data if served is None else served(data)
    site.files[f"/{bird_set.labels}"] = (labels if labels is not None else labels_csv(name, ids)).encode()
    document = metadata_document(name, bird_set.archive, data) if document is None else document
    site.files[f"/{bird_set.host.metadata_name}"] = json.dumps(document).encode()
    return data


def staging_of(dest):
    return dest.parent / f".{dest.name}{STAGING_SUFFIX}"


# ----------------------------------------------------------------------------- full fetches


@pytest.mark.parametrize("name", list(SETS))
def test_a_full_fetch_gives_a_folder_data_reads_as_it_is(site, tmp_path, name):
    data = publish(site, name)
    dest = tmp_path / "data" / name
    result = fetch(name, dest, mirror=site.url, **FAST)
    assert result.downloaded
    dataset = read_dataset(dest)
    assert [item.item_id for item in dataset.items] == sorted(IDS[name]) and dataset.problems == []
    assert all(item.path == dest / "wav" / f"{item.item_id}.wav" for item in dataset.items)
    assert dataset.metadata.name == SETS[name].labels
    assert {item.datasetid for item in dataset.items} == {DATASET_IDS[name]}
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert manifest["archive"]["md5"] == hashlib.md5(data).hexdigest()
    assert SETS[name].host.metadata_name in manifest["archive"]["verified_against"]
    assert manifest["counts"] == {"rows": 5, "items": 5, "problems": 0}
    assert not staging_of(dest).exists() and not list(tmp_path.rglob("*.part"))
    assert not (dest / SETS[name].archive).exists()   # the archive is not kept beside the WAVs
    assert site.requests_for(SETS[name].archive) == [None]


def test_the_default_sources_are_the_publishers():
    warblr, birdvox = SETS["warblrb10k"], SETS["birdvox-dcase-20k"]
    assert warblr.host.download_url(warblr.archive) == \
        "https://archive.org/download/warblrb10k_public/warblrb10k_public_wav.zip"
    assert warblr.host.metadata_url == "https://archive.org/metadata/warblrb10k_public"
    assert SETS["ff1010bird"].host.download_url("ff1010bird_wav.zip") == \
        "https://archive.org/download/ff1010bird/ff1010bird_wav.zip"
    assert birdvox.host.metadata_url == "https://zenodo.org/api/records/1208080"
    assert birdvox.host.download_url(birdvox.archive).startswith("https://zenodo.org/records/1208080/files/")
    assert [s.labels_url[-8:] for s in SETS.values()] == ["10853306", "10853303", "10853300"]


def test_every_set_names_hosts_of_the_host_protocol():
    for bird_set in SETS.values():
        assert isinstance(bird_set.host, fetch_module.Host) and isinstance(bird_set.labels_host, fetch_module.Host)
        assert bird_set.host.metadata_url and bird_set.host.metadata_name  # the audio host publishes hashes
        assert bird_set.labels_host.metadata_url is None  # figshare: no checksum by file id
        assert bird_set.labels_host.published({"files": []}, bird_set.labels) is None


def test_zenodos_legacy_document_is_read_too():
    host, md5 = SETS["birdvox-dcase-20k"].host, "A" * 32
    legacy = {"entries": [{"filename": "BirdVox-DCASE-20k.zip", "size": "12", "checksum": f"md5:{md5}"}]}
    assert host.published(legacy, "BirdVox-DCASE-20k.zip") == (12, ("md5", md5.lower()))
    assert host.published({"files": [{"key": "BirdVox-DCASE-20k.zip", "size": 12, "checksum": f"sha256:{md5}"}]},
                          "BirdVox-DCASE-20k.zip") is None  # only an MD5 is taken


def test_an_archive_host_that_publishes_no_checksum_is_refused(site, tmp_path, monkeypatch):
    unverifiable = fetch_module.BirdSet(**{**vars(SETS["warblrb10k"]), "host": fetch_module.FigshareFile("1")})
    monkeypatch.setitem(SETS, "warblrb10k", unverifiable)
    with pytest.raises(FetchError, match="publishes no size and MD5"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert site.log == []


# ----------------------------------------------------------------------------- resume


def test_a_dropped_download_is_resumed_with_range(site, tmp_path):
    publish(site)
    archive = f"/{SETS['warblrb10k'].archive}"
    site.drop_after[archive] = [5000, 1]
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert site.requests_for(archive[1:]) == [None, "bytes=5000-"]
    assert len(read_dataset(tmp_path / "d").items) == 5


def test_an_interrupted_fetch_leaves_no_finished_folder_and_the_next_run_resumes(site, tmp_path):
    publish(site)
    archive = SETS["warblrb10k"].archive
    site.drop_after[f"/{archive}"] = [7000, 99]
    dest = tmp_path / "d"
    with pytest.raises(FetchError, match="rerun to resume") as info:
        fetch("warblrb10k", dest, mirror=site.url, retries=0, **FAST)
    assert "7000" in str(info.value) and info.value.url.endswith(archive)
    assert not dest.exists()
    with pytest.raises(Exception):
        read_dataset(dest)
    part = staging_of(dest) / f"{archive}.part"
    assert part.stat().st_size == 7000
    site.drop_after.clear()
    fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert site.requests_for(archive)[-1] == "bytes=7000-"
    assert len(read_dataset(dest).items) == 5 and not staging_of(dest).exists()


def test_resume_through_a_redirect_keeps_the_range(site, tmp_path):
    """archive.org answers /download/... with a redirect to a data node: Range must survive it."""
    publish(site)
    archive = f"/{SETS['warblrb10k'].archive}"
    site.files["/node/file.zip"] = site.files.pop(archive)
    site.redirects[archive] = "/node/file.zip"
    site.drop_after["/node/file.zip"] = [4000, 1]
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert site.requests_for(archive[1:]) == [None, "bytes=4000-"]
    assert site.requests_for("node/file.zip") == [None, "bytes=4000-"]


def test_a_verified_archive_is_not_downloaded_twice(site, tmp_path):
    """When a later step fails (here the labels), the next run reuses the verified archive."""
    publish(site, labels=labels_csv("warblrb10k", ["other"]))
    with pytest.raises(DatasetError, match="do not belong"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert sorted(p.name for p in staging_of(tmp_path / "d").iterdir()) == [
        "archive.org-warblrb10k_public.json", SETS["warblrb10k"].archive]   # extracted WAVs freed
    site.files[f"/{SETS['warblrb10k'].labels}"] = labels_csv("warblrb10k", IDS["warblrb10k"]).encode()
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert site.requests_for(SETS["warblrb10k"].archive) == [None]
    assert len(read_dataset(tmp_path / "d").items) == 5


def test_a_server_that_ignores_range_restarts_cleanly(site, tmp_path):
    publish(site)
    archive = SETS["warblrb10k"].archive
    site.drop_after[f"/{archive}"] = [3000, 1]
    site.ignore_range.add(f"/{archive}")
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)   # the MD5 check proves no bytes were doubled
    assert site.requests_for(archive) == [None, "bytes=3000-"]


def test_download_resumes_a_kept_part_and_knows_when_it_is_whole(site, tmp_path):
    site.files["/f.bin"] = bytes(range(256)) * 40
    (tmp_path / "f.bin.part").write_bytes(site.files["/f.bin"][:1000])
    digest = hashlib.sha256(site.files["/f.bin"]).hexdigest()
    assert download(f"{site.url}/f.bin", tmp_path / "f.bin", digest=("sha256", digest), **FAST) == digest
    assert site.log == [("/f.bin", "bytes=1000-")]
    # A server that ignores Range sends the whole file again: the kept bytes must not stay in front of it.
    site.ignore_range.add("/f.bin")
    (tmp_path / "h.bin.part").write_bytes(b"stale bytes from an earlier run")
    download(f"{site.url}/f.bin", tmp_path / "h.bin", size=len(site.files["/f.bin"]), **FAST)
    assert (tmp_path / "h.bin").read_bytes() == site.files["/f.bin"]
    site.ignore_range.clear()
    # No size known and the part already whole: the server answers 416 and the part is taken as complete.
    (tmp_path / "g.bin.part").write_bytes(site.files["/f.bin"])
    download(f"{site.url}/f.bin", tmp_path / "g.bin", **FAST)
    assert (tmp_path / "g.bin").read_bytes() == site.files["/f.bin"]


# ----------------------------------------------------------------------------- integrity


def test_a_corrupted_archive_is_rejected_and_deleted(site, tmp_path):
    data = publish(site, served=lambda good: good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    dest = tmp_path / "d"
    with pytest.raises(ChecksumError) as info:
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    error = info.value
    assert error.algorithm == "md5" and error.expected == hashlib.md5(data).hexdigest()
    assert error.actual == hashlib.md5(site.files[f"/{SETS['warblrb10k'].archive}"]).hexdigest()
    assert error.expected in str(error) and error.actual in str(error) and "warblrb10k_public_wav.zip" in str(error)
    assert "deleted" in str(error) and not list(tmp_path.rglob("*.zip*")) and not dest.exists()


def test_a_size_other_than_the_published_one_is_refused_before_downloading(site, tmp_path):
    publish(site, served=lambda good: good + b"extra")
    with pytest.raises(FetchError, match="published size"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)


def test_an_archive_the_host_does_not_list_is_not_downloaded(site, tmp_path):
    publish(site, document={"files": [{"name": "something_else.zip", "size": "3", "md5": "0" * 32}]})
    with pytest.raises(FetchError, match="lists no size and MD5 for warblrb10k_public_wav.zip"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert site.requests_for(SETS["warblrb10k"].archive) == []


@pytest.mark.parametrize("member, why", [
    ("../evil", "'..'"),
    ("wav/../../evil.wav", "'..'"),
    ("/abs/evil.wav", "absolute"),
    ("C:/evil.wav", "absolute"),
])
def test_an_archive_with_an_unsafe_member_is_refused_whole(site, tmp_path, member, why):
    members = {f"wav/{i}.wav": wav_bytes(k) for k, i in enumerate(IDS["warblrb10k"])}
    members[member] = b"pwned"
    publish(site, members=members)
    work = tmp_path / "work"
    dest = work / "d"
    with pytest.raises(DatasetError, match=f"unsafe member.*{why}"):
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert not dest.exists() and not staging_of(dest).exists()
    assert not [p for p in tmp_path.rglob("*") if "evil" in p.name]


def test_a_symlink_member_is_refused(site, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("wav/a1.wav", wav_bytes(0))
        link = zipfile.ZipInfo("wav/b2.wav")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    data = buffer.getvalue()
    bird_set = SETS["warblrb10k"]
    site.files[f"/{bird_set.archive}"] = data
    site.files[f"/{bird_set.labels}"] = labels_csv("warblrb10k", ["a1", "b2"]).encode()
    site.files[f"/{bird_set.host.metadata_name}"] = json.dumps(
        metadata_document("warblrb10k", bird_set.archive, data)).encode()
    with pytest.raises(DatasetError, match="symbolic link"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)


def test_two_wavs_with_one_name_are_refused(site, tmp_path):
    """The WAVs land flat in wav/: two members that would share a file name must not overwrite each other."""
    publish(site, "ff1010bird", members={"wav/64486.wav": wav_bytes(0), "extra/64486.wav": wav_bytes(1)},
            ids=["64486"])
    with pytest.raises(DatasetError, match="two members are named 64486.wav"):
        fetch("ff1010bird", tmp_path / "d", mirror=site.url, **FAST)
    assert not (tmp_path / "d").exists()


def test_macos_resource_forks_and_other_members_are_skipped(site, tmp_path):
    members = {f"wav/{i}.wav": wav_bytes(k) for k, i in enumerate(IDS["ff1010bird"])}
    members["__MACOSX/wav/._64486.wav"] = b"\x00\x05\x16\x07"
    members["wav/._1044.wav"] = b"\x00\x05\x16\x07"
    members["README.txt"] = b"read me"
    publish(site, "ff1010bird", members=members)
    result = fetch("ff1010bird", tmp_path / "d", mirror=site.url, **FAST)
    assert sorted(result.manifest["skipped_members"]) == ["README.txt", "__MACOSX/wav/._64486.wav",
                                                         "wav/._1044.wav"]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(["ff1010bird_metadata_2018.csv", "wav",
                                                                          MANIFEST_NAME])


def test_labels_that_do_not_belong_to_the_audio_are_refused(site, tmp_path):
    publish(site, labels=labels_csv("warblrb10k", ["aaa", "bbb", "ccc"]))
    with pytest.raises(DatasetError, match="only 0 of its 3 rows have a WAV"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert not (tmp_path / "d").exists()


@pytest.fixture
def shared_folder():
    """A folder another user can reach (pytest's own tmp folders are private), under umask 022."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to run a command as the user nobody")
    folder = tempfile.mkdtemp(prefix="warblr-shared-")
    os.chmod(folder, 0o755)
    mask = os.umask(0o022)
    try:
        yield Path(folder)
    finally:
        os.umask(mask)
        shutil.rmtree(folder, ignore_errors=True)


def test_another_user_can_read_a_fetch_into_a_shared_folder(site, shared_folder):
    """Issue 19: every file was created 0600 whatever the umask; the user nobody must read the whole set."""
    publish(site)
    dest = shared_folder / "warblrb10k"
    manifest = fetch("warblrb10k", dest, mirror=site.url, **FAST).manifest
    files = sorted(manifest["files"]) + [MANIFEST_NAME]
    run = subprocess.run(["sha256sum", *files], cwd=dest, user="nobody", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    sums = dict(reversed(line.split("  ", 1)) for line in run.stdout.splitlines())
    assert {name: sums[name] for name in manifest["files"]} == {n: e[1] for n, e in manifest["files"].items()}
    assert hashlib.sha256((dest / MANIFEST_NAME).read_bytes()).hexdigest() == sums[MANIFEST_NAME]


def test_upper_case_wav_members_are_installed_where_the_reader_finds_them(site, tmp_path):
    """Issue 19: X.WAV members were extracted as X.WAV, the reader looks up X.wav: zero items, the tree deleted."""
    ids = IDS["ff1010bird"]
    publish(site, "ff1010bird", members={f"wav/{item_id}.WAV" if k % 2 else f"WAV/{item_id}.Wav": wav_bytes(k)
                                         for k, item_id in enumerate(ids)})
    dest = tmp_path / "d"
    result = fetch("ff1010bird", dest, mirror=site.url, **FAST)
    dataset = read_dataset(dest)
    assert [item.item_id for item in dataset.items] == sorted(ids) and dataset.problems == []
    assert sorted(p.name for p in (dest / "wav").iterdir()) == sorted(f"{i}.wav" for i in ids)
    assert sorted(result.manifest["files"]) == sorted([f"wav/{i}.wav" for i in ids] + [SETS["ff1010bird"].labels])
    verify_fetched(dest, progress=False)


def test_members_that_differ_only_in_the_case_of_wav_are_refused(site, tmp_path):
    publish(site, "ff1010bird", members={"wav/64486.wav": wav_bytes(0), "more/64486.WAV": wav_bytes(1)},
            ids=["64486"])
    with pytest.raises(DatasetError, match="two members are named 64486.wav"):
        fetch("ff1010bird", tmp_path / "d", mirror=site.url, **FAST)


# ----------------------------------------------------------------------------- network and host failures


def test_a_server_that_drops_every_connection(site, tmp_path):
    publish(site)
    archive = SETS["warblrb10k"].archive
    site.status[f"/{archive}"] = "drop"
    with pytest.raises(FetchError, match=r"could not download warblrb10k_public_wav.zip .* after 3 attempts"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, retries=2, **FAST)
    assert len(site.requests_for(archive)) == 3 and not (tmp_path / "d").exists()


def test_no_network(tmp_path):
    with socket.socket() as probe:   # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="check the network") as info:
        fetch("warblrb10k", tmp_path / "d", mirror=f"http://127.0.0.1:{port}", retries=0, **FAST)
    assert info.value.url == f"http://127.0.0.1:{port}/archive.org-warblrb10k_public.json"


@pytest.mark.parametrize("status", [404, 503])
def test_a_host_error_is_named(site, tmp_path, status):
    publish(site)
    archive = SETS["warblrb10k"].archive
    site.status[f"/{archive}"] = status
    with pytest.raises(FetchError, match=f"HTTP {status}"):
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, retries=1, **FAST)
    assert len(site.requests_for(archive)) == (2 if status >= 500 else 1)   # only server errors are retried


def test_a_host_listing_the_archive_as_empty_is_a_clear_error(site, tmp_path, capsys):
    """Issue 19: a size of 0 ended `warblr fetch` with a raw FileNotFoundError traceback."""
    bird_set = SETS["warblrb10k"]
    publish(site, document={"files": [{"name": bird_set.archive, "size": "0", "md5": hashlib.md5(b"").hexdigest()}]})
    dest = tmp_path / "d"
    with pytest.raises(FetchError, match="lists warblrb10k_public_wav.zip as 0 bytes") as info:
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert info.value.url == f"{site.url}/{bird_set.host.metadata_name}"
    assert site.requests_for(bird_set.archive) == [] and not dest.exists()
    assert cli.main(["fetch", "warblrb10k", "--dest", str(dest), "--mirror", site.url, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warblr: error: ") and "0 bytes" in err and "Traceback" not in err


def flocks():
    """``(blocked, inode)`` of each flock this process holds or waits for, from the kernel's /proc/locks."""
    try:
        lines = open("/proc/locks", encoding="ascii").read().splitlines()
    except OSError:
        pytest.skip("no /proc/locks")
    found = []
    for line in lines:
        fields = line.split()[1:]
        blocked = fields[0] == "->"
        fields = fields[1:] if blocked else fields
        if fields[0] == "FLOCK" and int(fields[3]) == os.getpid():
            found.append((blocked, int(fields[4].rsplit(":", 1)[1])))
    return found


def test_a_second_fetch_waits_for_the_first_and_downloads_nothing(site, tmp_path):
    """Issue 19: the first fetch deleted the staging folder holding its own lock; a second one fetched again.

    The first fetch is held mid-download by the server; the second starts then, passes the "not complete
    yet" check and must wait on the kernel lock (seen in /proc/locks), not be refused, not download.
    """
    publish(site)
    archive = f"/{SETS['warblrb10k'].archive}"
    site.gates[archive] = threading.Event()
    dest = tmp_path / "d"
    results = {}

    def run(key):
        try:
            results[key] = fetch("warblrb10k", dest, mirror=site.url, **FAST)
        except Exception as exc:  # noqa: BLE001 -- reported by the asserts below
            results[key] = exc

    first = threading.Thread(target=run, args=("first",))
    first.start()
    assert site.held.wait(20), "the first fetch never asked for the archive"
    held = [inode for blocked, inode in flocks() if not blocked]
    assert len(held) == 1, held   # the first fetch's lock
    second = threading.Thread(target=run, args=("second",))
    second.start()
    for _ in range(400):   # until the second fetch waits on that lock (or has already given up)
        if (True, held[0]) in flocks() or not second.is_alive():
            break
        second.join(0.05)
    site.gates[archive].set()
    first.join(60)
    second.join(60)
    assert results["first"].downloaded, results["first"]
    assert isinstance(results["second"], fetch_module.FetchResult), results["second"]
    assert results["second"].downloaded is False
    assert site.requests_for(archive[1:]) == [None]
    assert len(site.requests_for(SETS["warblrb10k"].host.metadata_name)) == 1
    # The lock the first fetch held was never deleted: the same file is still there.
    assert [p for p in tmp_path.rglob("*") if p.stat().st_ino == held[0]], "the held lock file was deleted"
    assert not staging_of(dest).exists()


def test_not_enough_disk_is_said_before_downloading(site, tmp_path, monkeypatch):
    publish(site)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    with pytest.raises(OutputError, match="1.0 KB free") as info:
        fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert info.value.path == staging_of(tmp_path / "d")
    assert site.requests_for(SETS["warblrb10k"].archive) == []


def test_a_write_failure_keeps_the_bytes_and_says_so(site, tmp_path):
    """A real failing write (a file-size limit in a child process) becomes an OutputError, the part is kept."""
    pytest.importorskip("resource")  # POSIX
    data = publish(site)
    limit = len(data) // 2
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from warblr import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    dest = tmp_path / "d"
    run = subprocess.run([sys.executable, "-c", script, "fetch", "warblrb10k", "--dest", str(dest), "--mirror",
                          site.url, "--quiet", "--retries", "0"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.returncode == 1, run.stderr
    assert "warblr: error:" in run.stderr and "cannot write" in run.stderr and "rerun to resume" in run.stderr
    part = staging_of(dest) / f"{SETS['warblrb10k'].archive}.part"
    assert part.stat().st_size == limit and not dest.exists()


# ----------------------------------------------------------------------------- DEST


def test_a_non_empty_dest_that_is_not_this_set_is_left_alone(site, tmp_path):
    publish(site)
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="is not empty .*notes.txt") as info:
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert info.value.path == dest and sorted(os.listdir(dest)) == ["notes.txt"] and site.log == []


def test_a_soundata_copy_is_recognised_and_not_overwritten(site, tmp_path):
    dest = tmp_path / "soundata_home"
    dest.mkdir()
    (dest / "warblrb10k_public_metadata.csv").write_text("itemid,hasbird\n")
    with pytest.raises(OutputError, match="soundata"):
        fetch("warblrb10k", dest, mirror=site.url, **FAST)


def test_an_empty_dest_is_filled(site, tmp_path):
    publish(site)
    (tmp_path / "d").mkdir()
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    assert (tmp_path / "d" / MANIFEST_NAME).is_file()


def test_a_dest_holding_another_fetched_set_is_refused(site, tmp_path):
    publish(site)
    fetch("warblrb10k", tmp_path / "d", mirror=site.url, **FAST)
    with pytest.raises(OutputError, match="holds warblrb10k, fetched by warblr, not ff1010bird"):
        fetch("ff1010bird", tmp_path / "d", mirror=site.url, **FAST)


def test_a_complete_dest_is_verified_without_any_download(site, tmp_path):
    publish(site)
    dest = tmp_path / "d"
    fetch("warblrb10k", dest, mirror=site.url, **FAST)
    site.log.clear()
    again = fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert not again.downloaded and site.log == []   # no audio request, nor any other
    wav = sorted((dest / "wav").iterdir())[0]
    damaged = bytearray(wav.read_bytes())
    damaged[-1] ^= 0xFF
    wav.write_bytes(bytes(damaged))
    assert fetch("warblrb10k", dest, mirror=site.url, quick=True, **FAST).downloaded is False  # sizes only
    with pytest.raises(DatasetError, match=f"wav/{wav.name} \\(SHA-256 changed\\)"):
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    wav.unlink()
    with pytest.raises(DatasetError, match="missing"):
        verify_fetched(dest, progress=False)
    (dest / MANIFEST_NAME).write_text('{"dataset": "warblrb10k", "files": {"wav/x.wav": "oops"}}')
    with pytest.raises(DatasetError, match="not a warblr fetch manifest"):
        fetch("warblrb10k", dest, mirror=site.url, **FAST)
    assert site.log == []


# ----------------------------------------------------------------------------- arguments and the CLI


def test_bad_arguments_name_the_parameter(tmp_path):
    with pytest.raises(InvalidArgumentError) as info:
        fetch("warblr", tmp_path / "d")
    assert info.value.parameter == "name"
    with pytest.raises(InvalidArgumentError) as info:
        fetch("warblrb10k", tmp_path / "d", mirror="ftp://example.org")
    assert info.value.parameter == "mirror"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError) as info:
        fetch("warblrb10k", tmp_path / "file")
    assert info.value.parameter == "dest"


def test_timeout_and_retry_wait_have_one_rule_in_the_api_and_on_the_command_line(tmp_path, capsys):
    for parameter, value in (("timeout", 0.5), ("retry_wait", -1), ("retries", -1)):
        with pytest.raises(InvalidArgumentError) as info:
            fetch("warblrb10k", tmp_path / "d", **{parameter: value})
        assert info.value.parameter == parameter
        flag = "--" + parameter.replace("_", "-")
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["fetch", "warblrb10k", "--dest", str(tmp_path / "d"), flag, str(value)])
        assert exit_info.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_cli_fetch_then_rerun(site, tmp_path, capsys):
    publish(site, "ff1010bird")
    dest = tmp_path / "ff"
    assert cli.main(["fetch", "ff1010bird", "--dest", str(dest), "--mirror", site.url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "fetched ff1010bird" in out and "5 clips" in out and f"warblr analyse --data {dest}" in out
    requests = len(site.log)
    assert cli.main(["fetch", "ff1010bird", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "about 5.8 GB" in out and "https://archive.org/metadata/ff1010bird" in out   # named, not contacted
    assert "nothing to download" in out and len(site.log) == requests


def test_cli_errors_exit_non_zero(site, tmp_path, capsys):
    publish(site, served=lambda good: good[::-1])
    assert cli.main(["fetch", "warblrb10k", "--dest", str(tmp_path / "d"), "--mirror", site.url, "--quiet",
                     "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warblr: error: warblrb10k_public_wav.zip: MD5 ")
    assert cli.main(["fetch", "warblrb10k"]) == 1
    assert "--dest" in capsys.readouterr().err
    assert cli.main(["fetch", "--dest", str(tmp_path / "e")]) == 1
    assert "NAME" in capsys.readouterr().err
    assert cli.main(["fetch", "warblrb10k", "--dest", str(tmp_path / "e"), "--mirror", "nope"]) == 1
    assert "--mirror" in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback(monkeypatch, capsys):
    """`warblr fetch --list | head -1`: the pipe's reader is gone before warblr writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w", buffering=1) as stdout:   # line-buffered: the first line meets the closed pipe
        monkeypatch.setattr(sys, "stdout", stdout)
        assert cli.main(["fetch", "--list"]) == 141
        stdout.write("the exit flush cannot fail either\n")
    assert capsys.readouterr().err == ""


def test_cli_list_and_help(capsys):
    assert cli.main(["fetch", "--list"]) == 0
    listing = capsys.readouterr().out
    assert listing == describe_sets() + "\n"
    for bird_set in SETS.values():
        assert bird_set.name in listing and bird_set.citation in listing and bird_set.host.metadata_url in listing
    assert listing.count("licence") == 3 and "about 15.4 GB" in listing and "MD5 published by Zenodo" in listing
    with pytest.raises(SystemExit):
        cli.main(["fetch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("4.3 GB", "MD5", "archive.org", "Zenodo", "Range", "resumed", "--mirror", "warblr-fetch.json"):
        assert phrase in text
