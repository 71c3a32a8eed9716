"""Idmapped mounts (Linux >= 5.12; overlayfs layers >= 5.19): a directory seen through a
user namespace's id maps, so that files owned by 0 appear owned by the mapped root.

    ns = userns_fd(uid_maps, gid_maps)       # a user namespace holding the maps (an fd)
    idmapped_bind(source, target, ns)        # target shows source with ids shifted
    os.close(ns)

The system calls (open_tree, mount_setattr, move_mount) have the same numbers on every
architecture: they came after the syscall tables were unified.
"""

import ctypes
import os
import struct

from skiff.linux._libc import libc

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x100000
CLONE_NEWUSER = 0x10000000


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _map_text(maps) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def userns_fd(uid_maps, gid_maps) -> int:
    """An fd of a new user namespace with these OCI maps, made by a short-lived child. The
    caller must be single-threaded (it forks) and privileged (it writes the maps)."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            ok = libc.unshare(CLONE_NEWUSER) == 0
            os.write(ready_w, b"1" if ok else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(1, "unshare(CLONE_NEWUSER) failed")
        with open(f"/proc/{pid}/uid_map", "w") as f:
            f.write(_map_text(uid_maps))
        with open(f"/proc/{pid}/gid_map", "w") as f:
            f.write(_map_text(gid_maps))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)   # the child ends; the namespace lives on in our fd
        os.waitpid(pid, 0)


def idmapped_bind(source: str, target: str, ns_fd: int, readonly: bool = True) -> None:
    """Mount `source` at `target` (an existing directory) with the maps of `ns_fd`;
    read-only unless asked (an image layer must never be written through it)."""
    fd = _check(libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source),
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), f"open_tree {source}")
    try:
        flags = MOUNT_ATTR_IDMAP | (MOUNT_ATTR_RDONLY if readonly else 0)
        attr = struct.pack("QQQQ", flags, 0, 0, ns_fd)
        buf = ctypes.create_string_buffer(attr, len(attr))
        _check(libc.syscall(SYS_MOUNT_SETATTR, fd, b"", AT_EMPTY_PATH, buf, len(attr)),
               f"mount_setattr {source}")
        _check(libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, os.fsencode(target),
                            MOVE_MOUNT_F_EMPTY_PATH), f"move_mount {target}")
    finally:
        os.close(fd)
