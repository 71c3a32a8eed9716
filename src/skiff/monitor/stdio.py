"""Reading a container's (or an exec's) output descriptors, pipes or a pty master."""

from __future__ import annotations

import errno
import os

READ_SIZE = 64 * 1024


def read_chunk(fd: int) -> bytes | None:
    """The next output; b"" at the end (a pty reports its end as EIO once the last slave
    closed); None when there is nothing to read yet."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno != errno.EIO:
            raise
        return b""


def console_pair():
    """(ours, theirs): a socket pair whose second end the runtime sends a pty master over."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours, theirs.detach()


def receive_terminal(console) -> int | None:
    """The pty master the runtime sent (it has, once spawn or exec returned), or None."""
    import socket

    _msg, fds, _flags, _addr = socket.recv_fds(console, 16, 1, socket.MSG_DONTWAIT)
    return fds[0] if fds else None


def pipes(*, stdin: bool, output: bool) -> tuple[tuple[int, int, int], int | None,
                                                 dict[int, int]]:
    """Stdio for a process without a terminal: ((stdin, stdout, stderr) for the child, the
    write end of its stdin if `stdin` (else /dev/null), {read end: stream} of its output if
    `output` (else /dev/null)). The caller closes the child's three after the spawn."""
    if stdin:
        stdin_r, stdin_w = os.pipe()
    else:
        stdin_r, stdin_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    if output:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        readers = {out_r: 1, err_r: 2}
    else:
        out_w = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        err_w, readers = os.dup(out_w), {}
    return (stdin_r, out_w, err_w), stdin_w, readers
