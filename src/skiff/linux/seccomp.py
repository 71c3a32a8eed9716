"""seccomp filters: build BPF programs, load them with seccomp(2).

Two ways to get a program (both return the BPF bytes, to be loaded later with `load`):

- `compile_profile(profile)` takes a runtime-spec `linux.seccomp` object and compiles it with
  libseccomp (libseccomp.so.2 through ctypes; loaded on first use).
- `blocklist(rules)` assembles an allow-by-default filter directly. libseccomp cannot express
  "deny unless the argument is one of these values" in an allow-by-default filter (it refuses
  two comparisons of one argument in a rule), which the default profile needs for
  personality(2); syscall numbers for each architecture still come from libseccomp.

Compile in the parent (once, cached by the caller); `load` in the child is one system call.
"""

import ctypes
import os
import struct

from ._libc import MACHINE, check, sysno, syscall

# Return values (the kernel's SECCOMP_RET_*; libseccomp's SCMP_ACT_* use the same numbers).
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

SECCOMP_SET_MODE_FILTER = 1
FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}

AUDIT_ARCH = {
    "x86_64": 0xC000003E,
    "x86": 0x40000003,
    "aarch64": 0xC00000B7,
    "arm": 0x40000028,
}
X32_SYSCALL_BIT = 0x40000000

# The architectures a process on this machine can make system calls as:
# (libseccomp name, audit arch, name of a sub-ABI sharing that audit arch via X32_SYSCALL_BIT).
NATIVE_ABIS = {
    "x86_64": [("x86_64", "x32"), ("x86", None)],
    "aarch64": [("aarch64", None), ("arm", None)],
}.get(MACHINE, [])


def errno_action(errno: int) -> int:
    return RET_ERRNO | (errno & 0xFFFF)


# --- loading -------------------------------------------------------------------------------

class _Fprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(bpf: bytes, flags: int = 0) -> None:
    """Install the filter on this thread (needs no_new_privs or CAP_SYS_ADMIN)."""
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _Fprog(len(bpf) // 8, ctypes.addressof(buf))
    check(syscall(ctypes.c_long(sysno("seccomp")), ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                  ctypes.c_uint(flags), ctypes.byref(prog)), "seccomp")


# --- libseccomp ---------------------------------------------------------------------------

class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_lib = None


def _libseccomp():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib = lib
    return _lib


def resolve(name: str, arch: str) -> int | None:
    """Syscall number of `name` on `arch` (libseccomp name: x86_64, x86, x32, aarch64, arm)."""
    lib = _libseccomp()
    token = lib.seccomp_arch_resolve_name(arch.encode())
    if token == 0:
        return None
    nr = lib.seccomp_syscall_resolve_name_arch(token, name.encode())
    return nr if nr >= 0 else None


SPEC_ACTIONS = {
    "SCMP_ACT_KILL": RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": RET_TRAP,
    "SCMP_ACT_ERRNO": RET_ERRNO,
    "SCMP_ACT_TRACE": RET_TRACE,
    "SCMP_ACT_ALLOW": RET_ALLOW,
    "SCMP_ACT_LOG": RET_LOG,
}
SPEC_OPS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
_EPERM = 1
_FLTATR_ACT_BADARCH = 2
_FLTATR_CTL_NNP = 3


def _spec_action(name: str, errno_ret) -> int:
    if name not in SPEC_ACTIONS:
        raise ValueError(f"unknown seccomp action {name!r}")
    act = SPEC_ACTIONS[name]
    if act == RET_ERRNO:
        return errno_action(_EPERM if errno_ret is None else errno_ret)
    if act == RET_TRACE:
        return RET_TRACE | ((errno_ret or 0) & 0xFFFF)
    return act


def _spec_arch(name: str) -> str:
    name = name.lower()
    if name.startswith("scmp_arch_"):
        name = name[len("scmp_arch_"):]
    return {"x86_64": "x86_64", "x86": "x86", "x32": "x32", "aarch64": "aarch64",
            "arm": "arm"}.get(name, name)


def compile_profile(profile: dict) -> bytes:
    """Compile a runtime-spec `linux.seccomp` object into BPF bytes with libseccomp.

    Syscall names unknown to libseccomp are skipped (as runc does); an unknown action or
    operator raises ValueError. The filter never sets no_new_privs itself.
    """
    lib = _libseccomp()
    default = _spec_action(profile.get("defaultAction", "SCMP_ACT_ALLOW"),
                           profile.get("defaultErrnoRet"))
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError(22, "seccomp_init failed")
    try:
        if lib.seccomp_attr_set(ctx, _FLTATR_CTL_NNP, 0) < 0:
            raise OSError(22, "seccomp_attr_set(NNP) failed")
        native = lib.seccomp_arch_native()
        for arch in profile.get("architectures") or ():
            token = lib.seccomp_arch_resolve_name(_spec_arch(arch).encode())
            if token == 0 or token == native:
                continue
            ret = lib.seccomp_arch_add(ctx, token)
            if ret < 0 and ret != -17:  # EEXIST
                raise OSError(-ret, f"seccomp_arch_add {arch}: {os.strerror(-ret)}")
        for rule in profile.get("syscalls") or ():
            action = _spec_action(rule.get("action", ""), rule.get("errnoRet"))
            if action == default:
                continue
            args = rule.get("args") or []
            arr = (_ArgCmp * max(1, len(args)))()
            for i, a in enumerate(args):
                op = SPEC_OPS.get(a.get("op"))
                if op is None:
                    raise ValueError(f"unknown seccomp operator {a.get('op')!r}")
                arr[i] = _ArgCmp(a.get("index", 0), op, a.get("value", 0), a.get("valueTwo", 0))
            for name in rule.get("names") or ([rule["name"]] if rule.get("name") else []):
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:
                    continue
                ret = lib.seccomp_rule_add_array(ctx, action, nr, len(args), arr)
                if ret < 0:
                    raise OSError(-ret, f"seccomp rule for {name}: {os.strerror(-ret)}")
        fd = os.memfd_create("seccomp", os.MFD_CLOEXEC)
        try:
            ret = lib.seccomp_export_bpf(ctx, fd)
            if ret < 0:
                raise OSError(-ret, f"seccomp_export_bpf: {os.strerror(-ret)}")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)


def flags_of(names) -> int:
    out = 0
    for name in names or ():
        if name not in FILTER_FLAGS:
            raise ValueError(f"unknown seccomp flag {name!r}")
        out |= FILTER_FLAGS[name]
    return out


# --- a small BPF assembler for allow-by-default filters -----------------------------------

_LD_ABS = 0x20
_JEQ = 0x15
_JGE = 0x35
_JSET = 0x45
_RET = 0x06

_OFF_NR = 0
_OFF_ARCH = 4


def _arg_lo(i):
    return 16 + 8 * i


def _arg_hi(i):
    return 20 + 8 * i


class _Asm:
    def __init__(self):
        self.code = []  # (op, jt, jf, k) with jt/jf as labels or None (= next)
        self.labels = {}

    def label(self, name):
        self.labels[name] = len(self.code)

    def op(self, code, k=0, jt=None, jf=None):
        self.code.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        out = []
        for i, (code, jt, jf, k) in enumerate(self.code):
            offs = []
            for target in (jt, jf):
                if target is None:
                    offs.append(0)
                    continue
                off = self.labels[target] - i - 1
                if not 0 <= off <= 255:
                    raise ValueError("seccomp filter too large for short jumps")
                offs.append(off)
            out.append(struct.pack("=HBBI", code, offs[0], offs[1], k & 0xFFFFFFFF))
        return b"".join(out)


def blocklist(rules, abis=None) -> bytes:
    """Assemble an allow-by-default filter.

    `rules` is a list of `(names, action, condition)`; `condition` is None (always),
    `("arg_not_in", index, values)` (act unless the argument is one of the values) or
    `("arg_any_bit", index, mask)` (act when the argument has any bit of the mask set;
    low 32 bits). Calls made as an architecture this machine does not run kill the process.
    """
    abis = NATIVE_ABIS if abis is None else abis
    asm = _Asm()
    asm.op(_LD_ABS, _OFF_ARCH)
    for i, (arch, _sub) in enumerate(abis):
        asm.op(_JEQ, AUDIT_ARCH[arch], jt=f"abi{i}")
    asm.op(_RET, RET_KILL_PROCESS)
    for i, (arch, sub) in enumerate(abis):
        asm.label(f"abi{i}")
        asm.op(_LD_ABS, _OFF_NR)
        if sub:
            asm.op(_JGE, X32_SYSCALL_BIT, jt=f"abi{i}.{sub}")
        _emit_abi(asm, f"abi{i}", arch, rules)
        if sub:
            asm.label(f"abi{i}.{sub}")
            _emit_abi(asm, f"abi{i}.{sub}", sub, rules)
    return asm.assemble()


def _emit_abi(asm, prefix, arch, rules):
    """Find the syscall number (in A) among the rules' and jump to per-ABI tails; a number
    no rule names is allowed. The first rule naming a number decides, as in a linear scan.

    A binary search rather than one comparison per number: the kernel runs a new filter
    for every system call number of each architecture when it is loaded (to cache the ones
    always allowed), and with ~100 comparisons in a row that made loading the default
    filter ~0.35 ms of every container start and exec here; the search takes ~8."""
    actions = {}
    conditional = []
    targets = {}
    for n, (names, action, cond) in enumerate(rules):
        actions.setdefault(action, f"{prefix}.ret{len(actions)}")
        for name in names:
            nr = resolve(name, arch)
            if nr is None or nr in targets:
                continue
            if cond is None:
                targets[nr] = actions[action]
            else:
                lab = f"{prefix}.c{n}.{name}"
                conditional.append((lab, action, cond))
                targets[nr] = lab
    _emit_search(asm, f"{prefix}.ge", sorted(targets.items()))
    for lab, action, cond in conditional:
        asm.label(lab)
        kind, idx = cond[0], cond[1]
        if kind == "arg_not_in":
            values = cond[2]
            asm.op(_LD_ABS, _arg_hi(idx))
            for v in values:
                if v >> 32:
                    raise ValueError("arg_not_in takes 32-bit values")
            asm.op(_JEQ, 0, jf=actions[action])
            asm.op(_LD_ABS, _arg_lo(idx))
            for v in values:
                asm.op(_JEQ, v, jt=f"{prefix}.allow")
            asm.op(_RET, action)
        elif kind == "arg_any_bit":
            asm.op(_LD_ABS, _arg_lo(idx))
            asm.op(_JSET, cond[2], jt=actions[action])
            asm.op(_RET, RET_ALLOW)
        else:
            raise ValueError(f"unknown condition {kind!r}")
    asm.label(f"{prefix}.allow")
    asm.op(_RET, RET_ALLOW)
    for action, lab in actions.items():
        asm.label(lab)
        asm.op(_RET, action)


_LEAF_SIZE = 4


def _emit_search(asm, prefix, targets):
    """Binary search of the sorted [(number, label)] for A: jump to the label of an equal
    number, else return RET_ALLOW. Unsigned comparisons, as the numbers are."""
    if len(targets) <= _LEAF_SIZE:
        for nr, label in targets:
            asm.op(_JEQ, nr, jt=label)
        asm.op(_RET, RET_ALLOW)
        return
    middle = len(targets) // 2
    pivot = targets[middle][0]
    asm.op(_JGE, pivot, jt=f"{prefix}.{pivot}")
    _emit_search(asm, prefix, targets[:middle])
    asm.label(f"{prefix}.{pivot}")
    _emit_search(asm, prefix, targets[middle:])
