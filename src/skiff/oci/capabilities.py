"""Linux capability names and Docker's `--cap-add` / `--cap-drop` arithmetic."""

from skiff.errors import InvalidArgument

# Index = the kernel's capability number (include/uapi/linux/capability.h).
ALL_CAPABILITIES: tuple[str, ...] = tuple("CAP_" + name for name in (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID",          # 0-4
    "KILL", "SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE",                # 5-9
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",  # 10-14
    "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE",      # 15-19
    "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE",        # 20-24
    "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",           # 25-29
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",       # 30-34
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",           # 35-39
    "CHECKPOINT_RESTORE",                                                    # 40
))
CAPABILITY_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(ALL_CAPABILITIES)}

# What docker grants a container that asks for nothing (moby oci.DefaultCapabilities).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

ALL = "ALL"


def normalize_capability(name: str) -> str:
    """`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`."""
    upper = name.strip().upper() if isinstance(name, str) else ""
    if upper == ALL:
        return ALL
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITY_NUMBERS:
        raise InvalidArgument(f'unknown capability: "{upper}"')
    return upper


def _normalize_all(names: list[str] | None) -> list[str]:
    seen: dict[str, None] = {}
    for name in names or []:
        seen[normalize_capability(name)] = None
    return list(seen)


def apply_capability_changes(
    base: list[str] | tuple[str, ...] = DEFAULT_CAPABILITIES,
    add: list[str] | None = None,
    drop: list[str] | None = None,
    privileged: bool = False,
) -> list[str]:
    """Docker's rule: privileged gets everything; `ALL` in add means all but the dropped;
    `ALL` in drop means exactly the added; otherwise base minus drop plus add."""
    if privileged:
        return list(ALL_CAPABILITIES)
    adds, drops = _normalize_all(add), _normalize_all(drop)
    if ALL in adds:
        return [c for c in ALL_CAPABILITIES if c not in drops]
    if ALL in drops:
        return adds
    result = [c for c in base if c not in drops]
    return result + [c for c in adds if c not in result]
