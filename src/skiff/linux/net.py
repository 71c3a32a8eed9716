"""Bringing a network interface (`lo`) up with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls."""

import ctypes
import fcntl
import os
import struct

from ._libc import check, libc

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_AF_INET = 2
_SOCK_DGRAM = 2
_SOCK_CLOEXEC = 0o2000000
_IFREQ = "16sH22x"


def link_up(name: str = "lo") -> None:
    fd = check(libc.socket(_AF_INET, _SOCK_DGRAM | _SOCK_CLOEXEC, 0), "socket")
    try:
        req = struct.pack(_IFREQ, name.encode(), 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(fd, SIOCGIFFLAGS, req))[1]
        if not flags & IFF_UP:
            fcntl.ioctl(fd, SIOCSIFFLAGS, struct.pack(_IFREQ, name.encode(), flags | IFF_UP))
    finally:
        os.close(fd)
