"""Extract one layer tar into an empty directory, safely, converting OCI whiteouts to overlay's.

    result = apply_layer(open(blob, "rb"), "/var/lib/skiff/snapshots/.tmp-x/fs")
    result.diff_id   # sha256 of the uncompressed tar, to check against the image config

Input: a layer blob, gzip- or zstd-compressed (zstd needs the `zstandard` module; gzip goes
through isa-l's `isal` when installed, zlib otherwise) or plain; the compression is recognised
by its magic bytes, so the media type only sharpens error messages.

What a layer may hold: directories, regular files, symlinks (any target: they are content and
are never followed here), hard links to entries of the same layer, character and block devices,
FIFOs; modes including setuid/setgid/sticky, numeric ownership, mtimes, and xattrs
(`SCHILY.xattr.*` pax records). OCI whiteouts become overlayfs ones: `dir/.wh.NAME` -> a 0:0
character device `dir/NAME`; `dir/.wh..wh..opq` -> xattr `trusted.overlay.opaque=y` on `dir`.

What is refused, with InvalidArgument naming the entry (the caller then removes the directory):
  - a name with a `..` component (absolute names are made relative to the layer root);
  - anything written through a symlink: every parent directory is opened component by
    component with O_NOFOLLOW from the layer root, so an earlier `evil -> /etc` symlink makes
    a later `evil/passwd` fail instead of writing the host's /etc/passwd;
  - a hard link whose target is not an earlier non-directory entry of this layer, or is
    reached through a symlink;
  - xattrs in the `trusted.overlay.` namespace (they would steer overlayfs: redirects,
    metacopy, forged whiteouts), which are dropped; unknown entry types.

Why not `tarfile.extractall(filter=...)`: the `data` filter refuses what layers legitimately
hold (device nodes, absolute symlinks, setuid bits, ownership), `tar`/`fully_trusted` let
through what layers must not do, the filters are path-string checks done before the write
(the kind of check that symlink races and PATH_MAX tricks have defeated: CVE-2025-4517 and
friends), they know nothing of whiteouts, and they differ between Python patch releases. So
tarfile only parses the stream here; every file-system change is made with `*at` calls relative
to directory file descriptors opened without following symlinks.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from skiff.errors import InvalidArgument
from skiff.snapshot.tarstream import TarStream

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
AUFS_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class LayerResult:
    diff_id: str        # sha256 of the uncompressed tar stream
    tar_size: int       # bytes of the uncompressed tar stream
    content_size: int   # bytes of regular-file content written (hard links counted once)


class _HashingReader(io.RawIOBase):
    """Passes reads through, hashing and counting every byte."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


class _CountingReader:
    """Passes reads through, counting (for a stream whose digest is already known)."""

    def __init__(self, raw):
        self.raw = raw
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n if n is not None and n >= 0 else CHUNK)
        self.size += len(data)
        return data


class _Prefixed(io.RawIOBase):
    """`head` then the rest of `raw` (to sniff magic bytes from an unseekable stream)."""

    def __init__(self, head: bytes, raw):
        self.head, self.raw = head, raw

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.raw.read(n)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _read_exactly(raw, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = raw.read(n - len(out))
        if not data:
            break
        out += data
    return out


def decompressed(raw: BinaryIO, media_type: str | None = None):
    """A reader of the uncompressed stream inside `raw`: gzip, zstd (with the `zstandard`
    module), bzip2, xz or plain, recognised by magic bytes as docker does."""
    head = _read_exactly(raw, 6)
    stream = _Prefixed(head, raw)
    if head.startswith(_GZIP_MAGIC):
        try:  # isa-l's inflate and CRC: three to four times zlib's speed, same checks
            from isal import igzip
        except ImportError:
            return gzip.GzipFile(fileobj=stream, mode="rb")
        return igzip.IGzipFile(fileobj=stream, mode="rb")
    if head.startswith(_ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise InvalidArgument(f"layer is zstd-compressed ({media_type or 'no media type'})"
                                  f" but the zstandard module is not installed") from None
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    if head.startswith(b"BZh"):
        import bz2
        return bz2.BZ2File(stream)
    if head.startswith(b"\xfd7zXZ\x00"):
        import lzma
        return lzma.LZMAFile(stream)
    return stream


def drain(reader) -> None:
    """Read `reader` to its end, so that a decompressor checks its trailer (CRC, length)."""
    while reader.read(CHUNK):
        pass


def safe_parts(name: str) -> list[str]:
    """Split an entry name into components relative to the layer root; `..` is refused.
    `/a/./b/` -> ["a", "b"]; "./" or "/" -> [] (the root itself)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"invalid layer entry {name!r}: path escapes the layer root")
    if any("\0" in p for p in parts):
        raise InvalidArgument(f"invalid layer entry {name!r}: NUL in path")
    return parts


class _Extractor:
    def __init__(self, dest: str, chown: bool):
        self.dest = dest
        self.chown = chown
        self.rootfd = os.open(dest, _DIR_FLAGS)
        self.dir_times: dict[tuple[str, ...], tuple[float, float]] = {}
        self.content_size = 0

    def close(self) -> None:
        os.close(self.rootfd)

    # -- walking ------------------------------------------------------------------------------

    def open_dir(self, parts: list[str], entry: str, create: bool) -> int:
        """An fd of the directory at `parts`, never following a symlink. Missing directories
        are created 0755 when `create`. The caller closes the fd."""
        fd = os.dup(self.rootfd)
        try:
            for part in parts:
                try:
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno == errno.ENOTDIR and create and _is_whiteout(part, fd):
                        # `.wh.a` then `a/x` in one layer: a new `a` that hides the lower one
                        os.unlink(part, dir_fd=fd)
                        os.mkdir(part, 0o755, dir_fd=fd)
                        nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                        os.setxattr(nfd, OPAQUE_XATTR, b"y")
                        os.close(fd)
                        fd = nfd
                        continue
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise InvalidArgument(
                            f"invalid layer entry {entry!r}: {'/'.join(parts)} is not a "
                            f"directory (writing through a symlink or a file is refused)"
                        ) from None
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    @staticmethod
    def _lstat(name: str, dirfd: int) -> os.stat_result | None:
        try:
            return os.lstat(name, dir_fd=dirfd)
        except FileNotFoundError:
            return None

    def clear(self, name: str, dirfd: int, keep_dir: bool = False) -> bool:
        """Remove what `name` is, unless it is a directory and `keep_dir`. Returns True when a
        directory was kept."""
        st = self._lstat(name, dirfd)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(name, dir_fd=dirfd)
        else:
            os.unlink(name, dir_fd=dirfd)
        return False

    # -- entries ------------------------------------------------------------------------------

    def apply(self, tar: TarStream, info: tarfile.TarInfo) -> None:
        parts = safe_parts(info.name)
        if not parts:
            if not info.isdir():
                raise InvalidArgument(f"invalid layer entry {info.name!r}: the layer root "
                                      f"must be a directory")
            self.metadata(info, "", self.rootfd, ())
            return
        base = parts[-1]
        if any(p.startswith(AUFS_META_PREFIX) for p in parts[:-1]):
            return  # inside AUFS metadata (.wh..wh.plnk/...): meaningless here
        if base.startswith(WHITEOUT_PREFIX):
            self.whiteout(info, parts)
            return
        dirfd = self.open_dir(parts[:-1], info.name, create=True)
        try:
            if info.isdir():
                replaces_whiteout = _is_whiteout(base, dirfd)
                if not self.clear(base, dirfd, keep_dir=True):
                    os.mkdir(base, 0o700, dir_fd=dirfd)
                if replaces_whiteout:  # `.wh.a` then `a/`: the new `a` hides the lower one
                    self.set_opaque(base, dirfd)
                self.metadata(info, base, dirfd, tuple(parts))
            elif info.isreg():
                self.regular(tar, info, base, dirfd)
            elif info.issym():
                self.clear(base, dirfd)
                os.symlink(info.linkname, base, dir_fd=dirfd)
                self.metadata(info, base, dirfd, None)
            elif info.islnk():
                self.hardlink(info, base, dirfd)
            elif info.ischr() or info.isblk() or info.isfifo():
                self.clear(base, dirfd)
                kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk() \
                    else stat.S_IFIFO
                dev = os.makedev(info.devmajor, info.devminor) if kind != stat.S_IFIFO else 0
                os.mknod(base, kind | 0o600, dev, dir_fd=dirfd)
                self.metadata(info, base, dirfd, None)
            else:
                raise InvalidArgument(f"invalid layer entry {info.name!r}: unsupported type "
                                      f"{info.type!r}")
        finally:
            os.close(dirfd)

    def regular(self, tar: TarStream, info: tarfile.TarInfo, base: str, dirfd: int):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:  # a new name (the common case) needs no look-up first
            fd = os.open(base, flags, 0o600, dir_fd=dirfd)
        except FileExistsError:  # replaced within the layer (O_EXCL never follows a link)
            self.clear(base, dirfd)
            fd = os.open(base, flags, 0o600, dir_fd=dirfd)
        try:
            remaining = info.size
            while remaining > 0:
                chunk = tar.read(min(CHUNK, remaining))
                if not chunk:
                    raise InvalidArgument(f"invalid layer: {info.name!r} is truncated")
                _write_all(fd, chunk)
                remaining -= len(chunk)
            self.content_size += info.size
            self.metadata(info, base, dirfd, None, fd=fd)
        finally:
            os.close(fd)

    def hardlink(self, info: tarfile.TarInfo, base: str, dirfd: int) -> None:
        target = safe_parts(info.linkname)
        if not target:
            raise InvalidArgument(f"invalid layer entry {info.name!r}: hard link to the root")
        try:
            tdir = self.open_dir(target[:-1], info.name, create=False)
        except FileNotFoundError:
            tdir = None
        try:
            st = self._lstat(target[-1], tdir) if tdir is not None else None
            if st is None or stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(
                    f"invalid layer entry {info.name!r}: hard link target {info.linkname!r} "
                    f"is not an earlier file of this layer")
            if target == safe_parts(info.name):
                return  # a link to itself: nothing to do
            self.clear(base, dirfd)
            os.link(target[-1], base, src_dir_fd=tdir, dst_dir_fd=dirfd,
                    follow_symlinks=False)
        finally:
            if tdir is not None:
                os.close(tdir)

    def whiteout(self, info: tarfile.TarInfo, parts: list[str]) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            fd = self.open_dir(parts[:-1], info.name, create=True)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        if base.startswith(AUFS_META_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, ...): meaningless here
        name = base[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise InvalidArgument(f"invalid layer entry {info.name!r}: bad whiteout")
        dirfd = self.open_dir(parts[:-1], info.name, create=True)
        try:
            st = self._lstat(name, dirfd)
            if st is None:
                os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=dirfd)
            elif stat.S_ISDIR(st.st_mode):
                # `a/...` then `.wh.a` in one layer: a whiteout hides only lower layers, so the
                # layer's own `a` stays, and hides the lower `a`'s contents
                self.set_opaque(name, dirfd)
            # a non-directory of this layer already hides whatever the lower layers have
        finally:
            os.close(dirfd)

    def set_opaque(self, name: str, dirfd: int) -> None:
        fd = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
        try:
            os.setxattr(fd, OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def metadata(self, info: tarfile.TarInfo, base: str, dirfd: int,
                 dir_key: tuple[str, ...] | None, fd: int | None = None) -> None:
        """Owner, mode, xattrs and mtime of the entry just made. Directories get their times at
        the end (creating children changes them)."""
        is_link = info.issym()
        target = fd if fd is not None else (dirfd if base == "" else None)
        if self.chown:
            if target is not None:
                os.fchown(target, info.uid, info.gid)
            else:
                os.chown(base, info.uid, info.gid, dir_fd=dirfd, follow_symlinks=False)
        if not is_link:  # chown cleared setuid/setgid: the mode goes after it
            if target is not None:
                os.fchmod(target, info.mode & 0o7777)
            else:
                os.chmod(base, info.mode & 0o7777, dir_fd=dirfd)
        for key, value in info.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                self.xattr(info, base, dirfd, target, key[len("SCHILY.xattr."):], value)
        times = (info.mtime, info.mtime)
        if dir_key is not None:
            self.dir_times[dir_key] = times
        elif target is not None:
            os.utime(target, times)
        else:
            os.utime(base, times, dir_fd=dirfd, follow_symlinks=False)

    def xattr(self, info, base, dirfd, target, name, value) -> None:
        if name.startswith("trusted.overlay."):
            return  # would steer overlayfs (see the module docstring)
        data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        try:
            if target is not None:
                os.setxattr(target, name, data)
            else:  # no dir_fd for xattrs: go through /proc, never following the last component
                os.setxattr(f"/proc/self/fd/{dirfd}/{base}", name, data, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM):
                raise InvalidArgument(f"invalid layer entry {info.name!r}: xattr {name}: "
                                      f"{e.strerror}") from None

    def finish(self) -> None:
        for key in sorted(self.dir_times, key=len, reverse=True):
            if not key:
                os.utime(self.rootfd, self.dir_times[key])
                continue
            try:
                fd = self.open_dir(list(key), "/".join(key), create=False)
            except (FileNotFoundError, InvalidArgument):
                continue  # replaced later in the layer by a non-directory
            try:
                os.utime(fd, self.dir_times[key])
            finally:
                os.close(fd)


def _is_whiteout(name: str, dirfd: int) -> bool:
    """Is `name` an overlay whiteout (a 0:0 character device) made earlier in this layer?"""
    try:
        st = os.lstat(name, dir_fd=dirfd)
    except FileNotFoundError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def decode_errors() -> tuple[type[BaseException], ...]:
    """What a corrupt or truncated stream raises, from tarfile and the decompressors."""
    import lzma
    errors: tuple[type[BaseException], ...] = (tarfile.TarError, EOFError, zlib.error,
                                               gzip.BadGzipFile, lzma.LZMAError)
    try:
        from isal import isal_zlib
        errors += (isal_zlib.error,)
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        return errors
    return errors + (zstandard.ZstdError,)


def apply_layer(blob: BinaryIO, dest: str, *, media_type: str | None = None,
                chown: bool = True, known_digest=None) -> LayerResult:
    """Extract the layer in `blob` into the existing, empty directory `dest`.

    `chown=False` skips ownership (an unprivileged caller). `known_digest`: the sha256 of
    `blob` as the content store verified it (or a function giving it once `blob` is read to
    its end: the writer on the other side of a pipe hashes what it sends); when the layer
    turns out to be uncompressed, that is its diff id and the stream is not hashed again. On InvalidArgument (or any other
    error) `dest` holds a partial tree: the caller removes it.
    """
    try:
        raw = decompressed(blob, media_type)
    except decode_errors() as e:
        raise InvalidArgument(f"invalid layer: {e}") from None
    plain = isinstance(raw, _Prefixed)
    if callable(known_digest):
        trusted = known_digest if plain else None
    else:
        trusted = known_digest if plain and known_digest and \
            known_digest.startswith("sha256:") else None
    hashing = _CountingReader(raw) if trusted else _HashingReader(raw)
    extractor = _Extractor(dest, chown)
    try:
        tar = TarStream(hashing)
        for info in tar:
            extractor.apply(tar, info)
        tar.drain()  # the diff id covers the whole stream, padding and trailer included
        extractor.finish()
    except decode_errors() as e:
        raise InvalidArgument(f"invalid layer tar: {e or type(e).__name__}") from None
    finally:
        extractor.close()
    if callable(trusted):
        trusted = trusted()
    diff_id = trusted or "sha256:" + hashing.hash.hexdigest()
    return LayerResult(diff_id, hashing.size, extractor.content_size)
