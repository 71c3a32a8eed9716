"""Changing the cgroup limits of a running container (runc's `update`), v1 and v2.

    update_resources(pid, resources)   # OCI `linux.resources` fields to change

The cgroups are found from /proc/<pid>/cgroup, so this works whichever runtime made them.
Only what `resources` names is written. Order matters where the kernel checks one limit
against another: on v1 `memory.memsw.limit_in_bytes` must stay >= `memory.limit_in_bytes`,
so a rise writes memsw first and a cut writes the memory limit first (as runc does).
"""

import errno
import os

from skiff.errors import RuntimeFailure

from . import cgroups


def _current(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def ordered_writes(writes: list, current_limit: int | None) -> list:
    """v1: memory limit and memsw in an order the kernel accepts (pure; `current_limit` is
    the memory limit now in force)."""
    limit = next((w for w in writes if w[1] == "memory.limit_in_bytes"), None)
    swap = next((w for w in writes if w[1] == "memory.memsw.limit_in_bytes"), None)
    if limit is None or swap is None:
        return writes
    rest = [w for w in writes if w is not limit and w is not swap]
    rising = current_limit is not None and int(limit[2]) > current_limit
    return ([swap, limit] if rising else [limit, swap]) + rest


def update_resources(pid: int, resources: dict) -> None:
    from . import host as _host
    from .exec import cgroup_dirs_of

    host = _host.current()
    dirs = cgroup_dirs_of(pid, host)
    if not dirs:
        raise RuntimeFailure(f"no cgroup found for process {pid}: is the container running?")
    writes = cgroups.resource_writes(resources, host.cgroup_v2)
    if not host.cgroup_v2:
        memory_dir = cgroups._dir_with(dirs, "memory", False)
        now = _current(os.path.join(memory_dir, "memory.limit_in_bytes")) if memory_dir else None
        writes = ordered_writes(writes, now)
    else:
        cgroups._enable_v2_controllers(dirs, [w for w in writes if w[0]])
    for controller, name, value in writes:
        if name == cgroups.DEVICE_PROGRAM:
            continue  # devices are not something `update` changes
        target = cgroups._dir_with(dirs, controller, host.cgroup_v2)
        if target is None:
            raise RuntimeFailure(f"cgroup controller {controller} is not available "
                                 f"(needed for {name})")
        try:
            cgroups._write(os.path.join(target, name), value)
        except OSError as e:
            if e.errno == errno.EBUSY and name.startswith("memory."):
                # the new limit is below what the container uses and nothing can be
                # reclaimed: the kernel's answer, in docker's words
                raise RuntimeFailure(f"failed to write {value!r} to {name}: Cannot allocate "
                                     f"memory") from None
            raise RuntimeFailure(f"failed to write {value!r} to {name}: "
                                 f"{os.strerror(e.errno)}") from None
