"""The C library handle and the few raw system call numbers glibc has no wrapper for."""

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
# Same library, but called with the GIL held: needed around a raw clone(), where the child must
# come back into the interpreter in the state os.fork() leaves it in.
libc_gil = ctypes.PyDLL(None, use_errno=True)

MACHINE = os.uname().machine

_SYSCALLS = {
    # name: (x86_64, aarch64)
    "clone": (56, 220),
    "pivot_root": (155, 41),
    "seccomp": (317, 277),
    "close_range": (436, 436),
    "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424),
}
_COLUMN = {"x86_64": 0, "aarch64": 1}.get(MACHINE)


def sysno(name: str) -> int:
    if _COLUMN is None:
        raise OSError(38, f"{name}: unsupported machine {MACHINE}")
    return _SYSCALLS[name][_COLUMN]


syscall = libc.syscall
syscall.restype = ctypes.c_long


def raise_errno(what: str | None = None):
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err), what)


def check(ret: int, what: str | None = None) -> int:
    if ret < 0:
        raise_errno(what)
    return ret
