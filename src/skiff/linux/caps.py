"""Capabilities: names, capget/capset (version 3), the bounding set and ambient capabilities.

Sets are Python ints used as bit masks (bit n = capability n), which is what the kernel's
two 32-bit words are. `mask(["CAP_CHOWN", "CAP_KILL"])` -> 0b100001.
"""

import ctypes

from ._libc import check, libc
from . import prctl as _prctl

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
CAP_SETPCAP = 8
CAP_SYS_ADMIN = 21

_VERSION_3 = 0x20080522


def number(name: str) -> int | None:
    """'CAP_CHOWN' or 'chown' -> 0; None if unknown."""
    name = name.upper()
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    return NUMBERS.get(name)


def mask(names) -> int:
    """Bit mask of the known names (unknown ones are left out: see `unknown`)."""
    out = 0
    for name in names or ():
        n = number(name)
        if n is not None:
            out |= 1 << n
    return out


def unknown(names) -> list:
    return [n for n in names or () if number(n) is None]


def names_of(bits: int) -> list:
    return [NAMES[i] if i < len(NAMES) else f"CAP_{i}" for i in range(64) if bits >> i & 1]


_last_cap = None


def last_cap() -> int:
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = len(NAMES) - 1
    return _last_cap


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_capget = libc.capget
_capget.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]
_capset = libc.capset
_capset.argtypes = [ctypes.POINTER(_Header), ctypes.POINTER(_Data)]


def capget(pid: int = 0) -> tuple:
    """(effective, permitted, inheritable) of `pid` (0: this thread)."""
    hdr = _Header(_VERSION_3, pid)
    data = (_Data * 2)()
    check(_capget(hdr, data), "capget")
    return tuple(getattr(data[0], f) | getattr(data[1], f) << 32
                 for f in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _Header(_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        sh = 32 * i
        data[i].effective = effective >> sh & 0xFFFFFFFF
        data[i].permitted = permitted >> sh & 0xFFFFFFFF
        data[i].inheritable = inheritable >> sh & 0xFFFFFFFF
    check(_capset(hdr, data), "capset")


def bounding_keep(keep: int) -> None:
    """Drop from the bounding set every capability not in `keep` (needs CAP_SETPCAP)."""
    for cap in range(last_cap() + 1):
        if not keep >> cap & 1:
            _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)


def bounding_has(cap: int) -> bool:
    return _prctl.prctl(_prctl.PR_CAPBSET_READ, cap) == 1


def ambient_set(caps: int) -> None:
    """Make the ambient set exactly `caps` (each must be permitted and inheritable)."""
    _prctl.prctl(_prctl.PR_CAP_AMBIENT, _prctl.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(last_cap() + 1):
        if caps >> cap & 1:
            _prctl.prctl(_prctl.PR_CAP_AMBIENT, _prctl.PR_CAP_AMBIENT_RAISE, cap)


def set_keepcaps(on: bool = True) -> None:
    _prctl.set_keepcaps(on)
