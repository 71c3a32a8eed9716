"""A process that sees a container's filesystem as the container does, for `cp` (the archive
API): stat a path, write a path out as a tar, or extract a tar into a directory.

    python -m skiff.runtime.fsview REQUEST_JSON

REQUEST: {"op": "stat" | "get" | "put", "path": an absolute path in the container,
          "pid": the running container's pid, or null,
          "rootfs": the rootfs mounts (annotation org.skiff.rootfs.mounts) of a stopped one,
          "bundle": its bundle directory, "mounts": its config.json mounts,
          "readonly": its root.readonly, "no_overwrite_dir_non_dir": bool,
          "copy_uid_gid": bool, "config": its config.json (for a user namespace's maps)}

Why a process of its own: it enters the running container's mount namespace, or mounts a
stopped container's rootfs in a private mount namespace of its own, then chroots there. Every
path and symlink then resolves inside the container as the kernel resolves it for the container
(nothing leads outside), and every mount vanishes with the process. `put` chroots once more,
into the extraction directory, so no tar entry can reach beyond it, however it is named or
whatever links earlier entries made.

stdout: one JSON line ({"stat": {...}}, {"ok": true} or {"error": text, "status": code}), then
for `get` the tar stream.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import stat as st
import sys
from skiff.tarfilters import tarfile

# Loaded before the chroot: nothing may be imported (or dlopen'ed) from the container's files.
import bz2  # noqa: F401  (tarfile's "r|*" opens these lazily)
import gzip  # noqa: F401
import lzma  # noqa: F401

from skiff.linux import mount as mnt
from skiff.linux import ns
from skiff.oci.idmap import IdMap, UnmappedId, of_spec
from skiff.timefmt import rfc3339_nano

# Without these, tarfile would look user and group names up through NSS, which after the
# chroot means loading the container's libraries into a root process.
tarfile.pwd = None
tarfile.grp = None

# Go's os.FileMode bits, which the docker CLI reads from the stat header.
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20

# Kernel filesystems of a running container whose contents are not files to copy.
PSEUDO_DIRS = ("/proc", "/sys", "/dev/pts", "/dev/mqueue")
CHUNK = 1 << 20


NO_MAP = IdMap(None)


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def go_file_mode(mode: int) -> int:
    bits = mode & 0o777
    kind = st.S_IFMT(mode)
    bits |= {st.S_IFDIR: GO_DIR, st.S_IFLNK: GO_SYMLINK, st.S_IFBLK: GO_DEVICE,
             st.S_IFCHR: GO_DEVICE | GO_CHARDEV, st.S_IFIFO: GO_PIPE,
             st.S_IFSOCK: GO_SOCKET}.get(kind, 0)
    if mode & st.S_ISUID:
        bits |= GO_SETUID
    if mode & st.S_ISGID:
        bits |= GO_SETGID
    if mode & st.S_ISVTX:
        bits |= GO_STICKY
    return bits


def resolve(path: str) -> str:
    """Docker's ResolvePath, inside the chroot: symlinks in the parent directories are
    followed, the last component is not; a trailing "/." or "/" is kept meaningful."""
    if not path.startswith("/"):
        path = "/" + path
    parent, base = posixpath.split(path.rstrip("/") or "/")
    if path.endswith("/.") or path == "/":
        return os.path.realpath(path)
    real_parent = os.path.realpath(parent or "/")
    resolved = posixpath.join(real_parent, base) if base else real_parent
    if path.endswith("/") and len(path) > 1:
        resolved = os.path.realpath(resolved)
    return resolved


def stat_of(path: str) -> dict:
    resolved = resolve(path)
    try:
        info = os.lstat(resolved)
    except FileNotFoundError:
        raise Refused(404, "not found") from None
    except NotADirectoryError:
        raise Refused(404, "not found") from None
    link_target = ""
    if st.S_ISLNK(info.st_mode):
        link_target = os.path.realpath(resolved)
    name = posixpath.basename(path.rstrip("/")) or "/"
    if path.endswith("/."):
        name = "."
    return {"name": name, "size": info.st_size, "mode": go_file_mode(info.st_mode),
            "mtime": rfc3339_nano(info.st_mtime_ns), "linkTarget": link_target}


# -- get -------------------------------------------------------------------------------------


def _tarinfo(path: str, name: str, info: os.stat_result, links: dict,
             ids: tuple[IdMap, IdMap]) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mode = st.S_IMODE(info.st_mode)
    ti.uid, ti.gid = ids[0].to_container(info.st_uid), ids[1].to_container(info.st_gid)
    ti.mtime = int(info.st_mtime)
    mode = info.st_mode
    if st.S_ISREG(mode):
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in links:
            ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
        else:
            ti.type, ti.size = tarfile.REGTYPE, info.st_size
            if info.st_nlink > 1:
                links[key] = name
    elif st.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
    elif st.S_ISLNK(mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif st.S_ISCHR(mode) or st.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if st.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
    elif st.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
    else:
        return None  # sockets have no tar form; docker leaves them out too
    xattrs = _xattrs(path) if not st.S_ISLNK(mode) else {}
    if xattrs:
        ti.pax_headers = xattrs
    return ti


def _xattrs(path: str) -> dict[str, str]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for key in names:
        if not key.startswith(("security.", "user.", "trusted.")):
            continue
        try:
            value = os.getxattr(path, key, follow_symlinks=False)
        except OSError:
            continue
        out["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return out


def write_tree(path: str, out, ids: tuple[IdMap, IdMap] = (NO_MAP, NO_MAP)) -> None:
    """The tar docker's GET archive gives: the resolved path named as the request's last
    component, its contents below it."""
    resolved = resolve(path)
    name = posixpath.basename(path.rstrip("/")) or "."
    if path.endswith("/."):
        name = "."
    links: dict = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      encoding="utf-8", errors="surrogateescape") as tar:
        _add(tar, resolved, name, links, ids)


def _add(tar: tarfile.TarFile, path: str, name: str, links: dict, ids) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return  # gone while we walked: a running container changes under us
    ti = _tarinfo(path, name, info, links, ids)
    if ti is None:
        return
    if ti.type == tarfile.REGTYPE:
        try:
            with open(path, "rb", opener=_nofollow) as f:
                tar.addfile(ti, f)
        except OSError:
            return
        return
    tar.addfile(ti)
    if ti.type == tarfile.DIRTYPE and path not in PSEUDO_DIRS:
        try:
            entries = sorted(os.listdir(path))
        except OSError:
            return
        for entry in entries:
            _add(tar, posixpath.join(path, entry), posixpath.join(name, entry), links, ids)


def _nofollow(path, flags):
    return os.open(path, flags | os.O_NOFOLLOW)


# -- put -------------------------------------------------------------------------------------


def extract(stream, *, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool,
            ids: tuple[IdMap, IdMap] = (NO_MAP, NO_MAP)) -> None:
    """Extract a tar into the current root (the destination directory, after the chroot).
    Owners are the container's root (its host ids), or with `copy_uid_gid` the archive's,
    both shifted into the container's user namespace if it has one."""
    dirs = []
    with tarfile.open(fileobj=stream, mode="r|*", encoding="utf-8",
                      errors="surrogateescape") as tar:
        for member in tar:
            name = posixpath.normpath("/" + member.name.lstrip("/"))
            if name == "/":
                continue
            member.name = name.lstrip("/")
            if member.islnk():
                member.linkname = posixpath.normpath("/" + member.linkname.lstrip("/"))
            _make_room(name, member, no_overwrite_dir_non_dir)
            if not copy_uid_gid:
                member.uid = member.gid = 0
            try:
                member.uid, member.gid = ids[0].to_host(member.uid), ids[1].to_host(member.gid)
            except UnmappedId as exc:
                raise Refused(400, str(exc)) from None
            member.uname = member.gname = ""
            tar.extract(member, path="/", numeric_owner=True, filter="fully_trusted")
            if member.isdir():
                dirs.append(member)
    for member in reversed(dirs):  # children changed their parents' times: set them again
        try:
            os.utime("/" + member.name, (member.mtime, member.mtime), follow_symlinks=False)
        except OSError:
            pass


def _make_room(path: str, member: tarfile.TarInfo, no_overwrite_dir_non_dir: bool) -> None:
    """What is at `path` gives way to the entry, as docker's untar does: a directory stays for
    a directory; anything else is replaced (never written through, if it is a symlink)."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if st.S_ISDIR(existing.st_mode):
        if member.isdir():
            return
        if no_overwrite_dir_non_dir:
            raise Refused(400, f"cannot overwrite directory {path!r} with non-directory "
                               f"{path!r}")
        shutil.rmtree(path)
        return
    if member.isdir() and no_overwrite_dir_non_dir:
        raise Refused(400, f"cannot overwrite non-directory {path!r} with directory {path!r}")
    os.unlink(path)


def put(path: str, stream, *, no_overwrite_dir_non_dir: bool, copy_uid_gid: bool,
        ids: tuple[IdMap, IdMap] = (NO_MAP, NO_MAP)) -> None:
    resolved = resolve(path)
    try:
        info = os.lstat(resolved)
    except (FileNotFoundError, NotADirectoryError):
        raise Refused(404, "not found") from None
    if not st.S_ISDIR(info.st_mode):
        raise Refused(400, "extraction point is not a directory")
    on_rootfs = info.st_dev == os.lstat("/").st_dev
    os.chroot(resolved)
    os.chdir("/")
    if os.statvfs("/").f_flag & os.ST_RDONLY:
        raise Refused(403, "container rootfs is marked read-only" if on_rootfs else
                           "mounted volume is marked read-only")
    extract(stream, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            copy_uid_gid=copy_uid_gid, ids=ids)


# -- entering the container's view ------------------------------------------------------------


def enter_running(pid: int) -> None:
    root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    mnt_ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY)
    ns.setns(mnt_ns, ns.CLONE_NEWNS)
    os.fchdir(root)
    os.chroot(".")
    os.chdir("/")
    os.close(root)
    os.close(mnt_ns)


def enter_stopped(bundle: str, rootfs: list[dict], mounts: list[dict], readonly: bool,
                  config: dict | None = None) -> None:
    """Mount the container's rootfs (and its bind mounts: volumes, host directories) in a
    mount namespace of this process's own, then chroot into it. A user-namespaced container's
    image layers are mounted idmapped as its runtime mounts them, so that every file shows
    its shifted owner, as in a running container."""
    from skiff.runtime import portable

    ns.unshare(ns.CLONE_NEWNS)
    mnt.mount(None, "/", None, mnt.MS_REC | mnt.MS_PRIVATE)
    root = os.path.join(bundle, "rootfs")
    if config and portable.mapped_root(config) is not None:
        lowers = os.path.join(bundle, f"cp-lowers-{os.getpid()}")  # the engine removes it
        try:
            portable.mount_rootfs(config, root, lowers)
        except Exception as exc:
            raise Refused(500, f"mounting the container's layers: {exc}") from None
        if readonly:
            mnt.mount(None, root, None, mnt.MS_BIND | mnt.MS_REMOUNT | mnt.MS_RDONLY)
        rootfs = []
    for m in rootfs:
        target = os.path.join(root, m.get("destination", "/").lstrip("/"))
        options = mnt.parse_options(m.get("options"))
        flags = options.flags | (mnt.MS_RDONLY if readonly else 0)
        mnt.mount(m.get("source") or m.get("type"), target, m.get("type"), flags,
                  options.data or None)
    for m in mounts:
        if m.get("type") != "bind" and "bind" not in (m.get("options") or []) and \
                "rbind" not in (m.get("options") or []):
            continue
        destination = posixpath.normpath(m.get("destination") or "/")
        if destination == "/" or destination.startswith(("/proc", "/sys", "/dev")):
            continue
        source = m.get("source") or ""
        if not os.path.exists(source):
            continue
        target = in_root(root, destination) or _make_mount_point(root, destination, source)
        if target is None:
            continue
        mnt.mount(m["source"], target, None, mnt.MS_BIND | mnt.MS_REC)
        if "ro" in (m.get("options") or []):
            mnt.mount(None, target, None, mnt.MS_BIND | mnt.MS_REMOUNT | mnt.MS_RDONLY)
    os.chroot(root)
    os.chdir("/")


def _make_mount_point(root: str, destination: str, source: str) -> str | None:
    """The runtime makes a missing mount point when the container starts; a container that
    never ran has none yet, so make it here the same way (in its parent, resolved in root)."""
    parent = in_root(root, posixpath.dirname(destination))
    if parent is None or not os.path.isdir(parent):
        return None
    target = os.path.join(parent, posixpath.basename(destination))
    if os.path.isdir(source):
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
    return target


def in_root(root: str, path: str) -> str | None:
    """`path` of the container as a host path below `root`, its symlinks resolved as the
    container would resolve them (never leaving `root`); None if it does not exist."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        try:
            info = os.lstat(here)
        except OSError:
            return None
        if st.S_ISLNK(info.st_mode):
            hops += 1
            if hops > 40:
                return None
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def _answer(obj: dict) -> None:
    sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n")
    sys.stdout.buffer.flush()


def serve(request: dict, progress: dict) -> None:
    ids = of_spec(request.get("config") or {})
    if request.get("pid"):
        enter_running(int(request["pid"]))
    else:
        enter_stopped(request["bundle"], request.get("rootfs") or [],
                      request.get("mounts") or [], bool(request.get("readonly")),
                      request.get("config"))
    op, path = request["op"], request["path"]
    if op == "stat":
        _answer({"stat": stat_of(path)})
    elif op == "get":
        _answer({"stat": stat_of(path)})
        progress["streaming"] = True  # from here on, a failure can only cut the tar short
        write_tree(path, sys.stdout.buffer, ids)
        sys.stdout.buffer.flush()
    elif op == "put":
        put(path, sys.stdin.buffer,
            no_overwrite_dir_non_dir=bool(request.get("no_overwrite_dir_non_dir")),
            copy_uid_gid=bool(request.get("copy_uid_gid")), ids=ids)
        _answer({"ok": True})
    else:
        raise Refused(400, f"unknown operation {op!r}")


def main(argv: list[str]) -> int:
    progress = {"streaming": False}
    try:
        serve(json.loads(argv[0]), progress)
        return 0
    except Exception as exc:
        if progress["streaming"]:
            return 1
        if isinstance(exc, Refused):
            _answer({"error": str(exc), "status": exc.status})
        elif isinstance(exc, (tarfile.TarError, EOFError)):
            _answer({"error": f"invalid tar archive: {exc}", "status": 400})
        elif isinstance(exc, OSError):
            _answer({"error": f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                     "status": 500})
        else:
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
