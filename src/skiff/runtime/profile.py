"""The default seccomp filter: allow everything except what docker's default profile keeps
from a container that was not granted extra capabilities. Pure data.

Each rule is `(syscall names, errno, condition)` (see skiff.linux.seccomp.blocklist).
Names that this machine's architectures lack are skipped when the filter is assembled.
"""

EPERM = 1
ENOSYS = 38

# Blocked outright (EPERM).
BLOCKED = (
    # kernel modules, kexec, reboot, swap, accounting, quotas
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "create_module", "get_kernel_syms", "query_module", "reboot", "swapon", "swapoff",
    "acct", "quotactl", "quotactl_fd", "nfsservctl",
    # raw I/O and legacy x86 interfaces
    "iopl", "ioperm", "vm86", "vm86old", "uselib", "sysfs", "_sysctl", "ustat",
    # mounts and namespaces (including the new mount API)
    "mount", "umount", "umount2", "pivot_root", "unshare", "setns", "fsopen", "fsconfig",
    "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
    # file handles (bypass path permission checks)
    "open_by_handle_at", "name_to_handle_at",
    # tracing, introspection of other processes, BPF, perf
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "bpf", "perf_event_open",
    "lookup_dcookie", "syslog",
    # the kernel keyring (not namespaced)
    "keyctl", "add_key", "request_key",
    # clocks (not namespaced)
    "settimeofday", "stime", "clock_settime", "clock_adjtime",
    # others
    "userfaultfd", "vhangup",
)

CLONE_NEW_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

# personality(2) values docker allows: PER_LINUX, PER_LINUX32, UNAME26 (and |PER_LINUX32),
# and the query 0xffffffff.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# As in docker's profile, a capability the container holds (in its bounding set) lets the
# system calls it governs through: `--cap-add SYS_ADMIN` may mount, `SYS_PTRACE` may ptrace.
ALLOWED_BY_CAPABILITY = {
    "CAP_SYS_ADMIN": ("mount", "umount", "umount2", "unshare", "setns", "fsopen", "fsconfig",
                      "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
                      "name_to_handle_at", "quotactl", "quotactl_fd", "lookup_dcookie",
                      "bpf", "perf_event_open", "syslog", "clone", "clone3"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_adjtime"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}


def default_rules(capabilities=()) -> list:
    """The rules for a container whose bounding set holds `capabilities` (names)."""
    allowed = set()
    for cap in capabilities:
        allowed.update(ALLOWED_BY_CAPABILITY.get(cap, ()))
    rules = [(tuple(n for n in BLOCKED if n not in allowed), EPERM, None)]
    if "clone" not in allowed:
        rules.append((("clone",), EPERM, ("arg_any_bit", 0, CLONE_NEW_FLAGS)))
    rules.append((("personality",), EPERM, ("arg_not_in", 0, PERSONALITIES)))
    if "clone3" not in allowed:
        # clone3 passes its flags in memory, which a filter cannot read: make libc fall back
        # to clone, whose flags we can check.
        rules.append((("clone3",), ENOSYS, None))
    return rules


DEFAULT_RULES = default_rules()
