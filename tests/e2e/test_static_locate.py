"""In-process tests of how ``Static`` turns a path into an open file
(``qiao.middleware._locate``), in both ways it has: ``O_PATH`` descriptors
read back through ``/proc/self/fd`` (Linux) and the ``realpath`` fallback.
Both must refuse the same paths, leak no descriptor, and never block on a
FIFO; the ``O_PATH`` way must serve the very file it checked."""

from __future__ import annotations

import os

import pytest
from mw_wsgi import call
from qiao.middleware import Static, _locate

WAYS = [False] + ([True] if _locate.FD_LINKS and os.path.isdir(_locate.FD_LINKS) else [])


@pytest.fixture(params=WAYS, ids=lambda w: "fd-links" if w else "realpath")
def way(request, monkeypatch):
    monkeypatch.setattr(_locate, "USE_FD_LINKS", request.param)
    return request.param


@pytest.fixture
def tree(tmp_path):
    pub = tmp_path / "pub"
    (pub / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_bytes(b"secret")
    (pub / "hello.txt").write_bytes(b"hello")
    (pub / "hello.txt.gz").write_bytes(b"gz-bytes")
    (pub / ".env").write_bytes(b"hidden")
    (pub / "sub" / "index.html").write_bytes(b"<p>index</p>")
    os.symlink("hello.txt", pub / "link_in")
    os.symlink(tmp_path / "secret.txt", pub / "link_out")
    os.symlink(tmp_path, pub / "dir_out")
    os.symlink(tmp_path / "secret.txt", pub / "hello2.txt.gz")
    (pub / "hello2.txt").write_bytes(b"hello2")
    os.mkfifo(pub / "fifo")
    os.symlink("fifo", pub / "link_fifo")
    return tmp_path


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


CASES = [
    ("/hello.txt", (), 200, b"hello"),
    ("/link_in", (), 200, b"hello"),
    ("/hello.txt", [("Accept-Encoding", "gzip")], 200, b"gz-bytes"),
    # a sibling that leads outside is ignored: the file itself is sent
    ("/hello2.txt", [("Accept-Encoding", "gzip")], 200, b"hello2"),
    ("/link_out", (), 404, None),
    ("/dir_out/secret.txt", (), 404, None),
    ("/.env", (), 404, None),
    ("/missing", (), 404, None),
    ("/fifo", (), 404, None),
    ("/link_fifo", (), 404, None),
    ("/sub", (), 301, None),
    ("/sub/", (), 200, b"<p>index</p>"),
]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_both_ways_answer_alike_and_leak_nothing(tree, way):
    app = Static(None, {"/": tree / "pub"})
    for path, headers, _, _ in CASES:  # warm-up: imports, caches
        call(app, path, headers=headers, validate=False)
    before = open_fds()
    for path, headers, code, body in CASES * 3:
        res = call(app, path, headers=headers, validate=False)
        assert res.code == code, path
        if body is not None:
            assert res.body == body, path
    head = call(app, "/hello.txt", method="HEAD", validate=False)
    assert (head.code, head.body) == (200, b"")
    etag = head.header("ETag")
    assert call(app, "/hello.txt", headers=[("If-None-Match", etag)], validate=False).code == 304
    assert open_fds() == before


def test_the_real_path_is_the_file_opened(tree, way):
    found = _locate.Found.locate(str(tree / "pub" / "link_in"))
    try:
        assert found.real == os.path.realpath(tree / "pub" / "hello.txt")
    finally:
        found.close()
    assert _locate.Found.locate(str(tree / "pub" / "nothing")) is None


@pytest.mark.skipif(True not in WAYS, reason="needs O_PATH and /proc")
def test_a_symlink_swapped_after_the_check_changes_nothing(tree, monkeypatch):
    monkeypatch.setattr(_locate, "USE_FD_LINKS", True)
    link = tree / "pub" / "swap"
    os.symlink("hello.txt", link)
    found = _locate.Found.locate(str(link))
    assert found.real.endswith("hello.txt")
    os.unlink(link)
    os.symlink(tree / "secret.txt", link)  # now it leads out of the directory
    file, st = found.open()
    with file:
        assert file.read() == b"hello"  # the file that was checked
    assert st.st_size == 5
