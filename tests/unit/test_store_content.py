import hashlib
import io
import os
import subprocess
import sys

import pytest

from skiff.errors import InvalidArgument, NotFound
from skiff.store import ContentStore
from skiff.store import failpoint

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def stored_files(store: ContentStore) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(store.blobs_dir):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(out)


@pytest.fixture
def store(tmp_path):
    return ContentStore(tmp_path)


def test_ingest_stores_under_digest(store, tmp_path):
    data = os.urandom(3 << 20)  # several chunks
    d, size = store.ingest(io.BytesIO(data))
    assert (d, size) == (digest(data), len(data))
    assert store.path(d) == str(tmp_path / "content" / "blobs" / "sha256" / d[7:])
    assert store.has(d) and store.size(d) == len(data)
    with store.open(d) as f:
        assert f.read() == data
    assert list(store.walk()) == [(d, len(data))]
    assert stored_files(store) == [store.path(d)]


def test_ingest_verifies_digest_and_size(store):
    data = b"hello"
    assert store.ingest(io.BytesIO(data), digest(data), 5) == (digest(data), 5)
    # idempotent: the second ingest of a stored blob does not even read
    class Unreadable(io.RawIOBase):
        def read(self, n=-1):
            raise AssertionError("read")
    assert store.ingest(Unreadable(), digest(data), 5) == (digest(data), 5)


@pytest.mark.parametrize("expected_digest,expected_size,msg", [
    (digest(b"other"), None, "digest mismatch"),
    (None, 4, "size mismatch"),
    (None, 6, "size mismatch"),
    (digest(b"hello"), 4, "size mismatch"),
])
def test_mismatch_leaves_nothing(store, expected_digest, expected_size, msg):
    with pytest.raises(InvalidArgument, match=msg):
        store.ingest(io.BytesIO(b"hello"), expected_digest, expected_size)
    assert stored_files(store) == []
    assert list(store.walk()) == []


def test_size_overrun_stops_reading_early(store):
    reads = []

    class Endless(io.RawIOBase):
        def read(self, n=-1):
            reads.append(n)
            return b"x" * (1 << 20)

    with pytest.raises(InvalidArgument, match="size mismatch"):
        store.ingest(Endless(), None, 10)
    assert len(reads) == 1
    assert stored_files(store) == []


def test_stream_error_leaves_nothing(store):
    class Broken(io.RawIOBase):
        def __init__(self):
            self.n = 0

        def read(self, n=-1):
            self.n += 1
            if self.n > 2:
                raise OSError("connection reset")
            return b"y" * 1000

    with pytest.raises(OSError):
        store.ingest(Broken())
    assert stored_files(store) == []


def test_bad_digests_rejected(store):
    for bad in ["", "sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "sha256" + "0" * 64]:
        with pytest.raises(InvalidArgument):
            store.path(bad)
    with pytest.raises(InvalidArgument):
        store.ingest(io.BytesIO(b""), "sha256:../../etc/passwd")


def test_ingest_bytes_open_delete(store):
    d, n = store.ingest_bytes(b"abc")
    assert store.read_bytes(d) == b"abc" and n == 3
    with pytest.raises(InvalidArgument):
        store.ingest_bytes(b"abc", digest(b"abd"))
    assert store.delete(d) is True
    assert store.delete(d) is False
    assert not store.has(d)
    with pytest.raises(NotFound):
        store.open(d)
    with pytest.raises(NotFound):
        store.size(d)


def test_sha512(store):
    data = b"x" * 100
    d = "sha512:" + hashlib.sha512(data).hexdigest()
    assert store.ingest(io.BytesIO(data), d) == (d, 100)
    assert store.has(d)


@pytest.mark.parametrize("point", ["content.ingest.written", "content.ingest.before_rename"])
def test_crash_leaves_no_blob(tmp_path, point):
    """The process dies at each step of an ingest: the blob is either absent or complete."""
    data = b"z" * 100000
    code = (f"import io, sys; from skiff.store import ContentStore; "
            f"ContentStore({str(tmp_path)!r}).ingest(io.BytesIO(b'z' * 100000))")
    env = dict(os.environ, SKIFF_FAILPOINTS=point, PYTHONPATH=os.path.abspath(SRC))
    proc = subprocess.run([sys.executable, "-c", code], env=env)
    assert proc.returncode == failpoint.EXIT_STATUS
    store = ContentStore(tmp_path)
    assert not store.has(digest(data))
    assert list(store.walk()) == []
    assert store.cleanup_temp() == 1  # the temp file of the interrupted ingest
    assert stored_files(store) == []


def test_writer_hashes_while_it_writes(store):
    """A BlobWriter's hash runs on a thread of its own: every piece counts, in order, also a
    buffer the caller reuses; a big blob starts its disk writing on the way."""
    import threading

    from skiff.store import content

    pieces, buf = [], bytearray(1000)
    with store.writer() as w:
        for i in range(300):
            piece = os.urandom([17, 512, 70_000, 1 << 20][i % 4])
            pieces.append(piece)
            w.write(piece)
            buf[:] = os.urandom(1000)
            w.write(buf)                  # reused by the caller: copied
            pieces.append(bytes(buf))
        assert w.digest() == digest(b"".join(pieces))   # so far ...
        w.write(b"tail")                                 # ... and on
        pieces.append(b"tail")
        d, size = w.commit()
    data = b"".join(pieces)
    assert size > content.WRITEBACK_STEP * 2
    assert (d, size) == (digest(data), len(data)) and store.read_bytes(d) == data
    assert not [t for t in threading.enumerate() if t.name == "blob-hash"]
    with store.writer() as w:                   # small: no thread at all
        w.write(b"small")
        assert w.commit() == (digest(b"small"), 5)
    with store.writer() as w:                   # abandoned half-way: nothing left behind
        w.write(os.urandom(3 << 20))
    assert not [t for t in threading.enumerate() if t.name == "blob-hash"]
    assert len(stored_files(store)) == 2
    with pytest.raises(InvalidArgument):
        with store.writer() as w:
            w.write(os.urandom(1 << 20))
            w.commit(expected_digest=digest(b"other"))
    assert len(stored_files(store)) == 2
