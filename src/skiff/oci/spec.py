"""Runtime-spec `config.json` as plain dicts, with Docker's defaults.

`default_spec` builds what `docker run IMAGE CMD` would hand runc before any flags are
applied; the engine changes the dict from there (mounts, cgroupsPath, namespaces paths...).
Everything is a fresh dict or list on each call, so callers may mutate what they get.
"""

import copy
from collections.abc import Callable

from skiff.oci.capabilities import (  # re-exported: spec users need them together
    ALL_CAPABILITIES,
    CAPABILITY_NUMBERS,
    DEFAULT_CAPABILITIES,
    apply_capability_changes,
    normalize_capability,
)
from skiff.oci.users import ExecUser, lookup_user, parse_user

OCI_VERSION = "1.0.2"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Hidden from the container (bind-mounted over with /dev/null or an empty read-only tmpfs):
# they leak host information or offer attack surface.
MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]
_DEFAULT_MOUNTS: tuple[dict, ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": _NOSUID_NOEXEC_NODEV},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    # gid=5 is the `tty` group of every common distribution; ptys are created mode 0620.
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": _NOSUID_NOEXEC_NODEV + ["ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": _NOSUID_NOEXEC_NODEV + ["relatime", "ro"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": _NOSUID_NOEXEC_NODEV},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": _NOSUID_NOEXEC_NODEV + ["mode=1777", "size=65536k"]},
)

# The runtime spec's default devices, which every runtime creates in /dev whether or not
# config.json lists them (so `linux.devices` stays empty, as docker leaves it).
DEFAULT_DEVICES: tuple[dict, ...] = tuple(
    {"path": path, "type": "c", "major": major, "minor": minor,
     "fileMode": 0o666, "uid": 0, "gid": 0}
    for path, major, minor in (
        ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
        ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
    )
)


def _allow(kind: str, major: int | None, minor: int | None, access: str = "rwm") -> dict:
    rule = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


# Device cgroup: deny everything, then allow mknod of anything (harmless without the
# cgroup permission to use it) and full use of the default devices, ptys and tun - the
# rules runc appends for docker's containers, written out so any runtime applies them.
DEFAULT_DEVICE_CGROUP_RULES: tuple[dict, ...] = (
    {"allow": False, "access": "rwm"},
    _allow("c", None, None, "m"),
    _allow("b", None, None, "m"),
    _allow("c", 1, 3), _allow("c", 1, 5), _allow("c", 1, 7),
    _allow("c", 1, 8), _allow("c", 1, 9),
    _allow("c", 5, 0), _allow("c", 5, 1), _allow("c", 5, 2),  # tty, console, ptmx
    _allow("c", 136, None),  # /dev/pts/*
    _allow("c", 10, 200),    # /dev/net/tun
)

# Docker sets no rlimits, so a container inherits dockerd's, which systemd starts with
# LimitNOFILE=infinity (1048576): that is the `ulimit -n` users expect inside.
DEFAULT_RLIMITS: tuple[dict, ...] = (
    {"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576},
)


def default_mounts() -> list[dict]:
    return copy.deepcopy(list(_DEFAULT_MOUNTS))


def default_spec(
    args: list[str],
    env: list[str],
    cwd: str = "/",
    user: tuple[int, int, list[int]] = (0, 0, []),
    hostname: str = "",
    terminal: bool = False,
    *,
    capabilities: list[str] | None = None,
    rlimits: list[dict] | None = None,
    cgroup_namespace: bool = True,
    readonly_rootfs: bool = False,
    no_new_privileges: bool = False,
) -> dict:
    """A complete config.json for `args` with Docker's defaults; `root.path` is "rootfs"."""
    uid, gid, additional_gids = user
    caps = list(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
    process_user: dict = {"uid": uid, "gid": gid}
    if additional_gids:
        process_user["additionalGids"] = list(additional_gids)
    namespaces = ["pid", "network", "ipc", "uts", "mount"]
    if cgroup_namespace:
        namespaces.append("cgroup")
    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": process_user,
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
            # No inheritable or ambient set: since CVE-2022-24769 docker grants none, so
            # an unprivileged exec cannot regain capabilities through file capabilities.
            "capabilities": {"bounding": caps, "effective": list(caps),
                             "permitted": list(caps)},
            "rlimits": copy.deepcopy(list(DEFAULT_RLIMITS if rlimits is None else rlimits)),
            "noNewPrivileges": no_new_privileges,
        },
        "root": {"path": "rootfs", "readonly": readonly_rootfs},
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": ns} for ns in namespaces],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "devices": [],
            "resources": {"devices": copy.deepcopy(list(DEFAULT_DEVICE_CGROUP_RULES))},
        },
    }
    if hostname:
        spec["hostname"] = hostname
    return spec


def resolve_env(
    image_env: list[str] | None,
    overrides: list[str] | None,
    lookup: Callable[[str], str | None] | None = None,
) -> list[str]:
    """Merge `KEY=VALUE` lists as docker does: an override replaces the image's value in
    place or is appended; a later override wins. A bare `KEY` is what the docker CLI sends
    for `-e KEY` when its own environment lacks KEY: it unsets KEY. With `lookup` (the
    caller's environment), a bare KEY takes `lookup(KEY)` when that is not None."""
    result: list[str | None] = []
    position: dict[str, int] = {}

    def put(key: str, entry: str | None) -> None:
        if key in position:
            result[position[key]] = entry
        elif entry is not None:
            position[key] = len(result)
            result.append(entry)

    for entry in image_env or []:
        put(entry.partition("=")[0], entry)
    for entry in overrides or []:
        key, has_value, _ = entry.partition("=")
        if not has_value:
            value = lookup(key) if lookup is not None else None
            entry = None if value is None else f"{key}={value}"
        put(key, entry)
    return [e for e in result if e is not None]


__all__ = [
    "ALL_CAPABILITIES", "CAPABILITY_NUMBERS", "DEFAULT_CAPABILITIES", "DEFAULT_DEVICES",
    "DEFAULT_DEVICE_CGROUP_RULES", "DEFAULT_PATH_ENV", "DEFAULT_RLIMITS", "ExecUser",
    "MASKED_PATHS", "OCI_VERSION", "READONLY_PATHS", "apply_capability_changes",
    "default_mounts", "default_spec", "lookup_user", "normalize_capability", "parse_user",
    "resolve_env",
]
