"""sethostname(2), setdomainname(2)."""

import ctypes

from ._libc import check, libc

_sethostname = libc.sethostname
_sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_setdomainname = libc.setdomainname
_setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def sethostname(name: str) -> None:
    b = name.encode()
    check(_sethostname(b, len(b)), "sethostname")


def setdomainname(name: str) -> None:
    b = name.encode()
    check(_setdomainname(b, len(b)), "setdomainname")
