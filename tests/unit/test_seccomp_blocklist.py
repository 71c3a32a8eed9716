"""seccomp.blocklist's filter, run by a small classic-BPF interpreter for every system call
number of every ABI this machine has, against what its rules say (the first rule naming a
number decides; numbers no rule names are allowed)."""

import struct

import pytest

from skiff.linux import seccomp
from skiff.runtime.profile import default_rules

pytestmark = pytest.mark.skipif(not seccomp.NATIVE_ABIS, reason="no known ABIs here")

RET_EPERM = seccomp.errno_action(1)


def run(program: bytes, arch: int, nr: int, args=(0,) * 6) -> tuple[int, int]:
    """The return value of `program` for seccomp_data {nr, arch, ip 0, args}, and how many
    instructions it ran."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    pc, acc, steps = 0, 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        steps += 1
        if code == 0x20:      # ld [k]
            acc = struct.unpack_from("=I", data, k)[0]
        elif code == 0x06:    # ret k
            return k, steps
        elif code in (0x15, 0x35, 0x45):   # jeq / jge / jset
            taken = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


def expected(rules, abi: str, nr: int, args) -> int:
    for names, action, cond in rules:
        if nr not in {seccomp.resolve(name, abi) for name in names}:
            continue
        if cond is None:
            return action
        kind, index = cond[0], cond[1]
        value = args[index]
        if kind == "arg_not_in":
            return seccomp.RET_ALLOW if value in cond[2] else action
        return action if value & 0xFFFFFFFF & cond[2] else seccomp.RET_ALLOW
    return seccomp.RET_ALLOW


def abis():
    for arch, sub in seccomp.NATIVE_ABIS:
        yield arch, arch, 0
        if sub:
            yield arch, sub, seccomp.X32_SYSCALL_BIT


RULES = [
    (["personality"], RET_EPERM, ("arg_not_in", 0, (0, 8, 0x20000, 0x20008, 0xFFFFFFFF))),
    (["clone"], RET_EPERM, ("arg_any_bit", 0, 0x7E020000)),
    (["mount", "umount2", "reboot", "kexec_load"], RET_EPERM, None),
    (["mount"], seccomp.RET_KILL_PROCESS, None),     # shadowed: the first rule decides
    (["ptrace"], seccomp.errno_action(38), None),
]


@pytest.mark.parametrize("rules", [RULES, [(n, seccomp.errno_action(e), c)
                                           for n, e, c in default_rules()]],
                         ids=["small", "default"])
def test_every_number_of_every_abi_gets_its_rules_action(rules):
    program = seccomp.blocklist(rules)
    for arch, abi, base in abis():
        audit = seccomp.AUDIT_ARCH[arch]
        for nr in range(base, base + 600):
            for args in ((0,) * 6, (8,) + (0,) * 5, (0x10000,) + (0,) * 5,
                         (0x20000,) + (0,) * 5, (1 << 32,) + (0,) * 5):
                want = expected(rules, abi, nr, args)
                assert run(program, audit, nr, args)[0] == want, (abi, nr, args)


def test_a_foreign_architecture_is_killed():
    program = seccomp.blocklist(RULES)
    assert run(program, 0x12345678, 0)[0] == seccomp.RET_KILL_PROCESS


def test_the_search_is_short():
    """~8 comparisons for an allowed number, not one per blocked number (the kernel runs the
    filter for every number at load time)."""
    rules = [(n, seccomp.errno_action(e), c) for n, e, c in default_rules()]
    program = seccomp.blocklist(rules)
    for arch, _abi, base in abis():
        longest = max(run(program, seccomp.AUDIT_ARCH[arch], nr)[1]
                      for nr in range(base, base + 600))
        assert longest <= 20, arch
