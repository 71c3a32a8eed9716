"""Pseudo-terminals: open a master in a devpts instance, its peer, the controlling terminal,
and passing a descriptor over a Unix socket (SCM_RIGHTS), as runc's --console-socket does."""

import fcntl
import os
import struct

TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
TIOCSWINSZ = 0x5414


def open_master(ptmx: str = "/dev/pts/ptmx") -> int:
    fd = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TIOCSPTLCK, struct.pack("i", 0))
    except BaseException:
        os.close(fd)
        raise
    return fd


def pts_number(master: int) -> int:
    return struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]


def open_peer(master: int) -> int:
    """Open the slave side through the master (TIOCGPTPEER), immune to path games."""
    try:
        return fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno not in (22, 25):  # EINVAL, ENOTTY: kernel before 4.13
            raise
    base = "/dev/pts"
    return os.open(f"{base}/{pts_number(master)}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def set_controlling(fd: int) -> None:
    fcntl.ioctl(fd, TIOCSCTTY, 0)


def send_fd(sock_fd: int, fd: int, name: bytes = b"/dev/ptmx") -> None:
    import socket
    s = socket.socket(fileno=os.dup(sock_fd))
    try:
        socket.send_fds(s, [name], [fd])
    finally:
        s.close()


def recv_fd(sock) -> tuple:
    """(fd, name) from a socket.socket connection; raises EOFError if none came."""
    import socket
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise EOFError("no file descriptor received")
    return fds[0], msg
