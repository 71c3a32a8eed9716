"""Process creation and handles: a clone() that behaves like os.fork() but takes namespace
flags, close_range(2), and pidfd helpers."""

import ctypes
import os

from ._libc import check, libc, libc_gil, raise_errno, sysno, syscall

SIGCHLD = 17
CLOSE_RANGE_CLOEXEC = 1 << 2

_raw_syscall = libc_gil.syscall
_raw_syscall.restype = ctypes.c_long
_api = ctypes.pythonapi


def clone(flags: int) -> int:
    """fork() with extra clone flags (CLONE_NEW*, CLONE_PARENT): 0 in the child, its pid in the
    parent. The calling process must be single-threaded, as for os.fork().

    The system call runs with the GIL held and is bracketed by the interpreter's own fork
    hooks (PyOS_BeforeFork/AfterFork_*), so the child comes back into Python exactly as it does
    from os.fork(). The child starts on a copy of the parent's stack (no new stack is given).
    """
    _api.PyOS_BeforeFork()
    pid = _raw_syscall(ctypes.c_long(sysno("clone")), ctypes.c_ulong(flags | SIGCHLD),
                       ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0),
                       ctypes.c_ulong(0))
    if pid == 0:
        _api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err), "clone")
    return pid


def cloexec_from(lowfd: int = 3) -> None:
    """Mark every descriptor >= lowfd close-on-exec (close_range(CLOSE_RANGE_CLOEXEC))."""
    ret = syscall(ctypes.c_long(sysno("close_range")), ctypes.c_uint(lowfd),
                  ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
    if ret < 0:
        if ctypes.get_errno() not in (38, 22):  # ENOSYS, EINVAL: older kernel
            raise_errno("close_range")
        _cloexec_slow(lowfd)


def _cloexec_slow(lowfd: int) -> None:
    import fcntl
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= lowfd:
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFD)
                fcntl.fcntl(fd, fcntl.F_SETFD, flags | fcntl.FD_CLOEXEC)
            except OSError:
                pass


def pidfd_open(pid: int) -> int:
    return os.pidfd_open(pid)


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    check(syscall(ctypes.c_long(sysno("pidfd_send_signal")), ctypes.c_int(pidfd),
                  ctypes.c_int(sig), ctypes.c_void_p(0), ctypes.c_uint(0)), "pidfd_send_signal")


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a pid from its reuse."""
    try:   # one read(2), no file object: exec checks this twice on its way (~30 us each)
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(data[data.rindex(b")") + 2:].split()[19])


def state_of(pid: int) -> str | None:
    """Field 3 of /proc/PID/stat ("R", "S", "Z", ...), None when the pid does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3].decode()


def overwrite_cmdline(text: str) -> None:
    """Make /proc/self/cmdline read `text` by overwriting the argument area in place (the
    kernel shows that memory): a forked process stops showing its parent's command line.
    Without CAP_SYS_RESOURCE (PR_SET_MM) the area cannot move, so `text` is cut to fit."""
    import ctypes
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[48 - 3]), int(fields[49 - 3])   # arg_start, arg_end (1-based)
    data = text.encode()[:max(0, end - start - 1)]
    ctypes.memset(start, 0, end - start)
    ctypes.memmove(start, data, len(data))
