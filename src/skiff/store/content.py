"""Content-addressed blob store: `<root>/content/blobs/<alg>/<hex>`.

A blob only ever appears under its final name complete and verified: `ingest` streams into a
temp file in the same directory (`.ingest-*`), hashing and counting as it goes, refuses the
blob as soon as it is longer than expected and at the end if its digest or size differ, fsyncs
it, renames it into place and fsyncs the directory. A crash leaves at most a temp file, which
`cleanup_temp()` removes (the engine calls it when it starts, before any ingest runs).

Blobs are immutable; two ingests of the same content are idempotent (the second one finds the
blob in place). Deleting a blob that an image still needs is the caller's business: the store
knows no images.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import BinaryIO

from skiff.errors import InvalidArgument, NotFound
from skiff.oci.digest import parse_digest
from skiff.store import failpoint

CHUNK = 1 << 20
_ALGORITHMS = ("sha256", "sha384", "sha512")
TEMP_PREFIX = ".ingest-"
WRITEBACK_STEP = 8 << 20   # a BlobWriter starts the disk writing every this many bytes


def split_digest(digest: str) -> tuple[str, str]:
    """`"sha256:<hex>"` -> `("sha256", "<hex>")`; InvalidArgument (go-digest's wording) else."""
    return parse_digest(digest)


class ContentStore:
    """Blobs by digest under `<root>/content/blobs`. Safe to share between threads and processes."""

    def __init__(self, root: str | os.PathLike):
        self.root = os.fspath(root)
        self.blobs_dir = os.path.join(self.root, "content", "blobs")
        os.makedirs(self.blobs_dir, mode=0o700, exist_ok=True)

    # -- reading ------------------------------------------------------------------------------

    def path(self, digest: str) -> str:
        """Where the blob lives (whether or not it is there)."""
        alg, hexpart = split_digest(digest)
        return os.path.join(self.blobs_dir, alg, hexpart)

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob not found: {digest}") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob not found: {digest}") from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def walk(self) -> Iterator[tuple[str, int]]:
        """Every stored blob as `(digest, size)`, temp files excluded."""
        for alg in sorted(_ALGORITHMS):
            d = os.path.join(self.blobs_dir, alg)
            try:
                entries = list(os.scandir(d))
            except FileNotFoundError:
                continue
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                yield f"{alg}:{entry.name}", entry.stat(follow_symlinks=False).st_size

    # -- writing ------------------------------------------------------------------------------

    def ingest(self, fileobj: BinaryIO, expected_digest: str | None = None,
               expected_size: int | None = None, *, durable: bool = True) -> tuple[str, int]:
        """Store what `fileobj` yields until EOF; returns `(digest, size)`.

        With `expected_digest` (and/or `expected_size`) the content is verified while it
        streams; a mismatch raises InvalidArgument and stores nothing. When the expected blob is
        already stored, `fileobj` is not read at all.

        `durable=False` leaves the flush to disk to a later `sync([digest, ...])`, which the
        caller must make before anything durable (a database row) names the blob: a load
        stores several blobs and unpacks them, and the disk writes back meanwhile instead of
        stalling each ingest. The blob is complete under its name either way (a killed
        process loses nothing the kernel has; only a power cut before the sync could, and
        then no row names the blob and the start-up clean-up removes it).
        """
        alg = split_digest(expected_digest)[0] if expected_digest else "sha256"
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"invalid size: {expected_size}")
        if expected_digest and self.has(expected_digest):
            size = self.size(expected_digest)
            if expected_size is not None and size != expected_size:
                raise InvalidArgument(f"size mismatch for {expected_digest}: expected "
                                      f"{expected_size} bytes, stored blob has {size}")
            return expected_digest, size

        directory = os.path.join(self.blobs_dir, alg)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        try:
            hasher = hashlib.new(alg)
            size = 0
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = fileobj.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if expected_size is not None and size > expected_size:
                        raise InvalidArgument(
                            f"size mismatch for {expected_digest or 'blob'}: more than the "
                            f"expected {expected_size} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
                failpoint.hit("content.ingest.written")
                digest = f"{alg}:{hasher.hexdigest()}"
                if expected_size is not None and size != expected_size:
                    raise InvalidArgument(f"size mismatch for {expected_digest or digest}: "
                                          f"expected {expected_size} bytes, got {size}")
                if expected_digest and digest != expected_digest:
                    raise InvalidArgument(
                        f"digest mismatch: expected {expected_digest}, got {digest}")
                out.flush()
                if durable:
                    os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            failpoint.hit("content.ingest.before_rename")
            os.rename(tmp, os.path.join(directory, digest.partition(":")[2]))
            tmp = None
            if durable:
                _fsync_dir(directory)
            return digest, size
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)

    def sync(self, digests) -> None:
        """Flush blobs stored with `durable=False` (and their directories) to disk."""
        directories = set()
        for digest in digests:
            path = self.path(digest)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            directories.add(os.path.dirname(path))
        for directory in directories:
            _fsync_dir(directory)

    # -- what a blob became when compressed (for pushes) -----------------------------------------

    def _alias_path(self, digest: str, kind: str) -> str:
        alg, hexpart = split_digest(digest)
        return os.path.join(self.root, "content", "compressed", f"{alg}-{hexpart}.{kind}")

    def compressed_of(self, digest: str, kind: str) -> tuple[str, int] | None:
        """(digest, size) of the `kind` ("gzip") compression of blob `digest` as pushed
        before; None when not known. Only a hint: the blob itself is not kept."""
        try:
            with open(self._alias_path(digest, kind)) as f:
                text, _, size = f.read().strip().partition(" ")
            split_digest(text)
            return text, int(size)
        except (OSError, ValueError, InvalidArgument):
            return None

    def remember_compressed(self, digest: str, kind: str, compressed: str, size: int) -> None:
        path = self._alias_path(digest, kind)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{compressed} {size}\n")
        os.replace(tmp, path)

    def writer(self, alg: str = "sha256") -> "BlobWriter":
        """A blob written piece by piece (a layer tar made on the fly): `write` it, then
        `commit()` -> (digest, size); closing without a commit leaves nothing."""
        if alg not in _ALGORITHMS:
            raise InvalidArgument(f"unsupported digest algorithm {alg}")
        return BlobWriter(self, alg)

    def ingest_bytes(self, data: bytes, expected_digest: str | None = None) -> tuple[str, int]:
        alg = split_digest(expected_digest)[0] if expected_digest else "sha256"
        digest = f"{alg}:{hashlib.new(alg, data).hexdigest()}"
        if expected_digest and digest != expected_digest:
            raise InvalidArgument(f"digest mismatch: expected {expected_digest}, got {digest}")
        if self.has(digest):
            return digest, len(data)
        return self.ingest(io.BytesIO(data), digest, len(data))

    def delete(self, digest: str) -> bool:
        """Remove a blob; returns False when it was not there."""
        path = self.path(digest)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        _fsync_dir(os.path.dirname(path))
        return True

    def cleanup_temp(self) -> int:
        """Remove temp files left by interrupted ingests; call only when none is running."""
        removed = 0
        for alg in _ALGORITHMS:
            d = os.path.join(self.blobs_dir, alg)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith(TEMP_PREFIX):
                    _unlink_quietly(os.path.join(d, name))
                    removed += 1
        return removed


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_sync_file_range = None


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a file's range to disk, without waiting for it
    (sync_file_range(SYNC_FILE_RANGE_WRITE)): the fsync that makes the file durable then
    finds most of it written. A no-op where the call is missing."""
    global _sync_file_range
    if _sync_file_range is None:
        import ctypes

        try:
            call = ctypes.CDLL(None, use_errno=True).sync_file_range
            call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        except (AttributeError, OSError):
            call = False
        _sync_file_range = call
    if _sync_file_range:
        _sync_file_range(fd, offset, length, 2)   # SYNC_FILE_RANGE_WRITE; errors: harmless


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class BlobWriter:
    """Streams into a temp file of the store, hashing; `commit` makes it a blob (fsync'd and
    renamed into place, as `ingest` does), `close` without a commit removes the temp file.
    The disk writing starts while the blob is written (every WRITEBACK_STEP bytes), so that
    the fsync at the commit has little left to wait for."""

    def __init__(self, store: ContentStore, alg: str = "sha256"):
        self.store = store
        self.directory = os.path.join(store.blobs_dir, alg)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.directory)
        self.file = os.fdopen(fd, "wb")
        self.hasher = _ThreadedHash(alg)
        self.alg = alg
        self.size = 0
        self._written_back = 0  # where the last writeback started from ended

    def write(self, data) -> int:
        if not isinstance(data, bytes):
            data = bytes(data)     # hashed later, by another thread: the caller may reuse it
        self.hasher.update(data)
        self.size += len(data)
        n = self.file.write(data)
        if self.size - self._written_back >= WRITEBACK_STEP:
            self.file.flush()
            _start_writeback(self.file.fileno(), self._written_back,
                             self.size - self._written_back)
            self._written_back = self.size
        return n

    def digest(self) -> str:
        """The digest of what is written so far."""
        return f"{self.alg}:{self.hasher.hexdigest()}"

    def commit(self, expected_digest: str | None = None, expected_size: int | None = None,
               *, durable: bool = True) -> tuple[str, int]:
        """Make it a blob; a digest or size other than expected raises InvalidArgument and
        keeps nothing. `durable=False`: as ContentStore.ingest's (a later `sync`)."""
        digest = self.digest()
        if expected_size is not None and self.size != expected_size:
            self.close()
            raise InvalidArgument(f"size mismatch for {expected_digest or digest}: expected "
                                  f"{expected_size} bytes, got {self.size}")
        if expected_digest is not None and digest != expected_digest:
            self.close()
            raise InvalidArgument(f"digest mismatch: expected {expected_digest}, got {digest}")
        self.file.flush()
        if durable:
            os.fsync(self.file.fileno())
        self.file.close()
        os.chmod(self.tmp, 0o444)
        failpoint.hit("content.writer.before_rename")
        os.rename(self.tmp, os.path.join(self.directory, digest.partition(":")[2]))
        self.tmp = None
        if durable:
            _fsync_dir(self.directory)
        return digest, self.size

    def close(self) -> None:
        self.hasher.close()
        if not self.file.closed:
            self.file.close()
        if self.tmp is not None:
            _unlink_quietly(self.tmp)
            self.tmp = None

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _ThreadedHash:
    """A hash computed by a thread of its own while the caller goes on writing (hashlib lets
    go of the GIL on large pieces): `update` hands pieces over in order, small ones batched;
    `hexdigest` waits for the rest. Memory: at most QUEUED batches wait."""

    QUEUED = 16
    BATCH = 256 << 10

    def __init__(self, alg: str):
        import queue

        self._hash = hashlib.new(alg)
        self._queue: queue.Queue = queue.Queue(self.QUEUED)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._thread: threading.Thread | None = None
        self._result: str | None = None

    def _run(self) -> None:
        update = self._hash.update
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for piece in batch:
                update(piece)

    def update(self, data: bytes) -> None:
        self._result = None
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="blob-hash", daemon=True)
            self._thread.start()
        self._queue.put(self._pending)
        self._pending, self._pending_size = [], 0

    def hexdigest(self) -> str:
        if self._result is None:
            if self._thread is None:      # small: hashed here
                for piece in self._pending:
                    self._hash.update(piece)
                self._pending = []
            else:
                if self._pending:
                    self._hand_over()
                self.close()
            self._result = self._hash.hexdigest()
        return self._result

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
