"""The default seccomp filter: allow everything except what docker's default profile keeps
from a container that was not granted extra capabilities. Pure data.

Each rule is `(syscall names, errno, condition)` (see skiff.linux.seccomp.blocklist).
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

DEFAULT_RULES = (
    (BLOCKED, EPERM, None),
    (("clone",), EPERM, ("arg_any_bit", 0, CLONE_NEW_FLAGS)),
    (("personality",), EPERM, ("arg_not_in", 0, PERSONALITIES)),
    # clone3 passes its flags in memory, which a filter cannot read: make libc fall back to
    # clone, whose flags we can check.
    (("clone3",), ENOSYS, None),
)
