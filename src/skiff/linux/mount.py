"""mount(2), umount2(2), pivot_root(2), and runc's table of mount options.

`parse_options(["ro", "nosuid", "mode=755"])` -> `MountOptions(flags, propagation, data)`:
`flags` are the MS_* bits for mount(2), `propagation` the MS_SHARED/MS_PRIVATE/... calls to
make afterwards (each needs its own mount(2) call), and `data` the filesystem-specific string
("mode=755"). Pure; it is what the runtime's planner uses to turn config.json into calls.
"""

import ctypes

from ._libc import check, libc, raise_errno, sysno, syscall

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# option -> (clear?, flag); runc's table.
_FLAGS = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# statvfs f_flag bits (ST_*) -> MS_* bits, to keep a mount's locked flags on a bind remount.
_ST_TO_MS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC),
             (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME))


class MountOptions:
    __slots__ = ("flags", "propagation", "data")

    def __init__(self, flags: int, propagation: list, data: str):
        self.flags = flags
        self.propagation = propagation
        self.data = data

    def __eq__(self, other):
        return (isinstance(other, MountOptions) and (self.flags, self.propagation, self.data)
                == (other.flags, other.propagation, other.data))

    def __repr__(self):
        return f"MountOptions(flags={self.flags:#x}, propagation={self.propagation}, data={self.data!r})"


def parse_options(options) -> MountOptions:
    flags = 0
    propagation = []
    data = []
    for opt in options or ():
        known = _FLAGS.get(opt)
        if known is not None:
            clear, bit = known
            if clear:
                flags &= ~bit
            else:
                flags |= bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data))


def flags_of_statvfs(f_flag: int) -> int:
    out = 0
    for st, ms in _ST_TO_MS:
        if f_flag & st:
            out |= ms
    return out


_mount = libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                   ctypes.c_char_p]
_umount2 = libc.umount2
_umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else s.encode()


def mount(source, target, fstype, flags: int = 0, data=None) -> None:
    if _mount(_b(source), _b(target), _b(fstype), flags, _b(data) or None) != 0:
        raise_errno(target)


def umount2(target, flags: int = 0) -> None:
    check(_umount2(_b(target), flags), target)


def pivot_root(new_root, put_old) -> None:
    check(syscall(ctypes.c_long(sysno("pivot_root")), ctypes.c_char_p(_b(new_root)),
                  ctypes.c_char_p(_b(put_old))), new_root)
