"""eBPF for cgroup v2 device control: a tiny assembler, BPF_PROG_LOAD and BPF_PROG_ATTACH.

cgroup v2 has no devices.allow file: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
cgroup decides each open/mknod (context: access_type = access << 16 | type, major, minor;
return 1 to allow, 0 to deny).
"""

import ctypes
import os
import struct

from ._libc import MACHINE, check, syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK = 1
DEV_CHAR = 2
ACC_MKNOD = 1
ACC_READ = 2
ACC_WRITE = 4

_NR = {"x86_64": 321, "aarch64": 280}.get(MACHINE, -1)

# opcodes
LDX_W = 0x61      # dst = *(u32 *)(src + off)
AND32_K = 0x54
RSH32_K = 0x74
MOV32_X = 0xBC
MOV32_K = 0xB4
JNE32_K = 0x56    # if (u32)dst != imm goto +off
EXIT = 0x95


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, len(attr))
    return check(syscall(ctypes.c_long(_NR), ctypes.c_int(cmd), buf,
                         ctypes.c_uint(len(attr))), "bpf")


def load_device_program(program: bytes) -> int:
    """Load a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd (close-on-exec)."""
    code = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(16384)

    def attr(log_level):
        a = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8,
                        ctypes.addressof(code), ctypes.addressof(license), log_level,
                        len(log) if log_level else 0, ctypes.addressof(log) if log_level else 0,
                        0, 0, b"skiff_devices", 0, 0)
        return a + b"\0" * (128 - len(a))

    try:
        return _bpf(BPF_PROG_LOAD, attr(0))
    except OSError as e:
        detail = ""
        if e.errno == 22:  # EINVAL: ask the verifier why
            try:
                os.close(_bpf(BPF_PROG_LOAD, attr(1)))
            except OSError:
                detail = ": " + log.value.decode(errors="replace").strip().replace("\n", "; ")
        raise OSError(e.errno, f"BPF_PROG_LOAD: {os.strerror(e.errno)}{detail}") from None


def attach_device_program(cgroup_fd: int, prog_fd: int) -> None:
    attr = struct.pack("<IIIII", cgroup_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0)
    attr += b"\0" * (128 - len(attr))
    _bpf(BPF_PROG_ATTACH, attr)
