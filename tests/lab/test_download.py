"""``warblr.lab.download``: edge cases of the resumable, verified download, against a real HTTP server on 127.0.0.1."""

import hashlib
import http.server
import threading

import pytest

from warblr.errors import InvalidArgumentError
from warblr.lab.download import MIN_TIMEOUT_S, check_transfer_options, download


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A plain static HTTP server on a free local port, serving ``empty`` (0 bytes) and ``small`` (5 bytes)."""
    root = tmp_path_factory.mktemp("site")
    (root / "empty").write_bytes(b"")
    (root / "small").write_bytes(b"hello")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_published_size_of_zero_gives_the_verified_empty_file(site, tmp_path):
    digest = download(f"{site}/empty", tmp_path / "e", size=0, digest=("md5", hashlib.md5(b"").hexdigest()),
                      progress=False)
    assert digest == hashlib.md5(b"").hexdigest() and (tmp_path / "e").read_bytes() == b""
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("option, value", [("retry_wait", -1), ("retry_wait", float("nan")), ("retry_wait", "2"),
                                           ("timeout", 0), ("timeout", MIN_TIMEOUT_S / 2), ("retries", -1),
                                           ("retries", 1.5)])
def test_transfer_options_are_checked_before_anything_is_opened(site, tmp_path, option, value):
    options = {"timeout": 5.0, "retries": 0, "retry_wait": 0.0, option: value}
    with pytest.raises(InvalidArgumentError) as info:
        download(f"{site}/small", tmp_path / "s", progress=False, **options)
    assert info.value.parameter == option and not list(tmp_path.iterdir())
    with pytest.raises(InvalidArgumentError):
        check_transfer_options(**options)  # the one rule fetch and `warblr fetch` use too
    download(f"{site}/small", tmp_path / "s", progress=False, timeout=5.0, retries=0, retry_wait=0.0)
    assert (tmp_path / "s").read_bytes() == b"hello"
