"""Namespaces: CLONE_* flags, unshare(2) and setns(2)."""

import ctypes
import os

from ._libc import check, libc

CLONE_NEWTIME = 0x00000080
CLONE_VM = 0x00000100
CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# runtime-spec namespace type -> flag
NAMESPACES = {
    "mount": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "network": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "cgroup": CLONE_NEWCGROUP,
    "user": CLONE_NEWUSER,
    "time": CLONE_NEWTIME,
}

_unshare = libc.unshare
_unshare.argtypes = [ctypes.c_int]
_setns = libc.setns
_setns.argtypes = [ctypes.c_int, ctypes.c_int]


def unshare(flags: int) -> None:
    check(_unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(_setns(fd, nstype), "setns")


def enter(path: str, nstype: int = 0) -> None:
    """setns() into the namespace file at `path` (e.g. /proc/PID/ns/net)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype)
    finally:
        os.close(fd)
