"""A container's changes, from its overlay upper dir: as a list (`docker diff`), as an OCI layer
tar (`docker commit`), and the merged filesystem as one tar (`docker export`).

Vocabulary: `upper` is an active snapshot's upper dir (overlayfs form: a deleted path is a 0:0
character device, a directory whose lower contents are hidden carries the xattr
`trusted.overlay.opaque=y`); `lowers` are the committed snapshots below it, TOP-MOST FIRST
(overlay's lowerdir order), in the same form.

Worked example: a container of busybox ran `rm /etc/group; echo hi > /tmp/x`. Its upper dir
holds `etc/` (a copy of the lower dir), `etc/group` (a 0:0 char device), `tmp/`, `tmp/x`, so

    changes(upper, lowers)            -> [("C", "/etc"), ("D", "/etc/group"),
                                          ("C", "/tmp"), ("A", "/tmp/x")]
    write_layer(upper, out)           -> a tar with etc/, etc/.wh.group, tmp/, tmp/x
    write_merged([upper] + lowers, out) -> every file the container sees, whiteouts applied

`exclude` names paths (absolute, `/etc/hosts`) that the runtime created as mount points: when
such a path is in the upper dir only as an empty file or directory that no lower layer has, it
is not a change (docker keeps these in a separate init layer).

Refused (InvalidArgument): upper dirs with overlay redirects or metacopy files, which only
exist when the overlay was mounted with redirect_dir or metacopy on; skiff mounts neither, and
a layer made from them would be wrong.

Tars are written in PAX format (long and non-UTF-8 names, xattrs as `SCHILY.xattr.*`, numeric
ownership, no user or group names), with integer mtimes, hard links within the tar as links to
the first name, and `trusted.overlay.*` xattrs left out. The tar writer is our own small loop
around `TarInfo.tobuf`: tarfile's stream mode copies its buffer quadratically for large files.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO, Iterator

from skiff.errors import InvalidArgument

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
_REFUSED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
BLOCK = 512
CHUNK = 1 << 20


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM, errno.ENOENT):
            return {}
        raise
    out = {}
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _check_overlay_xattrs(path: str, xattrs: dict[str, bytes]) -> None:
    for name in _REFUSED_XATTRS:
        if name in xattrs:
            raise InvalidArgument(f"{path}: overlay {name.rsplit('.', 1)[1]} entries are not "
                                  f"supported (mount without redirect_dir and metacopy)")


def _scandir(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def lower_stat(lowers: list[str], rel: str) -> os.stat_result | None:
    """The stat of `rel` (`a/b`, no leading slash) as the lower layers show it together, or
    None if they do not hold it (absent, whited out, or hidden by an opaque dir above it)."""
    parts = rel.split("/")
    for layer in lowers:
        try:
            st = os.lstat(os.path.join(layer, rel))
        except OSError:
            st = None
        if st is not None:
            return None if _is_whiteout(st) else st
        # not in this layer: does this layer hide it further down?
        path = layer
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                pst = os.lstat(path)
            except OSError:
                break
            if not stat.S_ISDIR(pst.st_mode) or _is_opaque(path):
                return None
    return None


def _excluded(rel: str, st: os.stat_result, full: str, lowers: list[str],
              exclude: frozenset[str]) -> bool:
    if "/" + rel not in exclude:
        return False
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        pass
    elif stat.S_ISDIR(st.st_mode) and not os.listdir(full):
        pass
    else:
        return False
    return lower_stat(lowers, rel) is None


def changes(upper: str, lowers: list[str],
            exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(kind, path) in docker's order and words: "A" added, "C" changed, "D" deleted. A
    directory is "C" when its mode or owner changed or when anything beneath it changed; an
    opaque directory that replaced a lower one is "D" followed by its new contents as "A"."""
    out: list[tuple[str, str]] = []
    recorded: set[str] = set()

    def record(kind: str, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent and parent not in recorded:
            record("C", parent)
        if rel not in recorded:
            recorded.add(rel)
            out.append((kind, "/" + rel))

    def walk(directory: str, prefix: str, replaced: bool) -> None:
        for entry in _scandir(directory):
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            full = entry.path
            if _is_whiteout(st):
                record("D", rel)
                continue
            if _excluded(rel, st, full, lowers, exclude):
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dir:
                _check_overlay_xattrs(full, _xattrs(full))
            lower = None if replaced else lower_stat(lowers, rel)
            if is_dir and _is_opaque(full) and lower is not None:
                record("D", rel)
                walk(full, rel + "/", True)
                continue
            if lower is None:
                record("A", rel)
            elif not (is_dir and stat.S_ISDIR(lower.st_mode) and
                      lower.st_mode == st.st_mode and lower.st_uid == st.st_uid and
                      lower.st_gid == st.st_gid):
                record("C", rel)
            if is_dir:
                walk(full, rel + "/", replaced or lower is None)

    walk(upper, "", False)
    return out


# -- tar writing ---------------------------------------------------------------------------------


class _TarWriter:
    """PAX tar entries written straight to `out` (anything with `write(bytes)`)."""

    def __init__(self, out: BinaryIO, ids=None):
        self.out = out
        self.ids = ids            # (uids, gids) oci.idmap.IdMap: host ids back to the image's
        self.links: dict[tuple[int, int], str] = {}
        self.content_size = 0     # bytes of regular files written (hard links once)

    def _header(self, info: tarfile.TarInfo) -> None:
        self.out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def entry(self, full: str, rel: str, st: os.stat_result, *, xattrs: dict | None = None,
              name: str | None = None) -> None:
        """One file-system object; directories are written as themselves, not their content."""
        info = tarfile.TarInfo(name or rel)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        if self.ids:
            info.uid, info.gid = (self.ids[0].to_container(st.st_uid),
                                  self.ids[1].to_container(st.st_gid))
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        mode = st.st_mode
        if xattrs is None:
            xattrs = _xattrs(full)
        for key, value in xattrs.items():
            if not key.startswith("trusted.overlay."):
                info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
                self._header(info)
                return
            if st.st_nlink > 1:
                self.links[key] = info.name
            info.type, info.size = tarfile.REGTYPE, st.st_size
            self._header(info)
            self._content(full, st.st_size)
            self.content_size += st.st_size
            return
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            info.name = info.name.rstrip("/") + "/"
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets: not part of an image
        self._header(info)

    def empty_file(self, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime, info.uname, info.gname = 0o644, int(st.st_mtime), "", ""
        self._header(info)

    def _content(self, full: str, size: int) -> None:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            left = size
            while left > 0:
                data = os.read(fd, min(CHUNK, left))
                if not data:
                    break
                self.out.write(data)
                left -= len(data)
        finally:
            os.close(fd)
        if left:  # the file shrank while we read it: keep the header's promise
            self.out.write(bytes(left))
        pad = -size % BLOCK
        if pad:
            self.out.write(bytes(pad))

    def finish(self) -> None:
        self.out.write(bytes(2 * BLOCK))


def write_layer(upper: str, out: BinaryIO, *, lowers: list[str] = (),
                exclude: frozenset[str] = frozenset(), ids=None) -> int:
    """The upper dir as an OCI layer tar: whiteouts become `.wh.NAME` entries, opaque dirs get
    a `.wh..wh..opq` entry, mount points of `exclude` are left out. `ids` (uids, gids as
    oci.idmap.IdMap) turns a user-namespaced container's owners, shifted on the host, back
    into the ids a layer carries. Returns the bytes of regular-file content written (hard
    links once): what the layer takes unpacked, as unpack.apply_layer counts it."""
    tar = _TarWriter(out, ids)

    def walk(directory: str, prefix: str) -> None:
        for entry in _scandir(directory):
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            full = entry.path
            if _is_whiteout(st):
                tar.empty_file(prefix + WHITEOUT_PREFIX + entry.name, st)
                continue
            if exclude and _excluded(rel, st, full, list(lowers), exclude):
                continue
            xattrs = _xattrs(full)
            _check_overlay_xattrs(full, xattrs)
            tar.entry(full, rel, st, xattrs=xattrs)
            if stat.S_ISDIR(st.st_mode):
                if xattrs.get(OPAQUE_XATTR) == b"y":
                    tar.empty_file(rel + "/" + OPAQUE_MARKER, st)
                walk(full, rel + "/")

    walk(upper, "")
    tar.finish()
    return tar.content_size


def _merged_entries(dirs: list[str]) -> Iterator[tuple[str, str, os.stat_result, list[str]]]:
    """(name, path, stat, the dirs to merge beneath it if it is a directory) for the children of a
    directory seen through `dirs` (top-most first, already cut at the first opaque one)."""
    found: dict[str, tuple[int, os.DirEntry, os.stat_result]] = {}
    hidden: set[str] = set()
    for i, d in enumerate(dirs):
        try:
            entries = _scandir(d)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name in found or entry.name in hidden:
                continue
            st = entry.stat(follow_symlinks=False)
            if _is_whiteout(st):
                hidden.add(entry.name)
                continue
            found[entry.name] = (i, entry, st)
    for name in sorted(found):
        i, entry, st = found[name]
        below: list[str] = []
        if stat.S_ISDIR(st.st_mode):
            below.append(entry.path)
            if not _is_opaque(entry.path):
                for d in dirs[i + 1:]:
                    path = os.path.join(d, name)
                    try:
                        lst = os.lstat(path)
                    except OSError:
                        continue
                    if not stat.S_ISDIR(lst.st_mode):
                        break  # a file or whiteout ends the directory's history here
                    below.append(path)
                    if _is_opaque(path):
                        break
        yield name, entry.path, st, below


def write_merged(layers: list[str], out: BinaryIO) -> None:
    """The filesystem that an overlay of `layers` (top-most first) shows, as one plain tar
    (`docker export`): no whiteouts, hard links kept within each layer."""
    tar = _TarWriter(out)

    def walk(dirs: list[str], prefix: str) -> None:
        for name, full, st, below in _merged_entries(dirs):
            rel = prefix + name
            tar.entry(full, rel, st)
            if below:
                walk(below, rel + "/")

    roots = []
    for layer in layers:
        roots.append(layer)
        if _is_opaque(layer):
            break
    walk(roots, "")
    tar.finish()

