"""Was a container's process killed by the kernel's OOM killer?

Asked once per exit, after the init is reaped and before `runtime.cleanup` removes the
container's cgroups. The counter lives in the container's memory cgroup: `oom_kill N` in
`memory.events` (v2) or in `memory.oom_control` (v1, kernel >= 4.13). A container gets a fresh
cgroup on every start, so any kill counted there happened during this run, as Docker's
`State.OOMKilled` means (a kill of any of its processes, not only of the init).
"""

from __future__ import annotations

import json
import os


def oom_killed(bundle: str, container_id: str) -> bool:
    """True when the container's memory cgroup counted at least one OOM kill; False when
    it counted none or cannot be read (no memory controller, already removed)."""
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return count(config, container_id) > 0


def count(config: dict, container_id: str) -> int:
    from skiff.errors import SkiffError
    from skiff.runtime import cgroups, host

    try:
        h = host.current()
        dirs = cgroups.paths((config.get("linux") or {}).get("cgroupsPath"), container_id, h)
    except SkiffError:
        return 0
    total = 0
    for hierarchy, d in dirs:
        if h.cgroup_v2:
            names = ("memory.events",)
        elif "memory" in hierarchy.controllers:
            names = ("memory.oom_control",)
        else:
            continue
        for name in names:
            total += parse_oom_kills(_read(os.path.join(d, name)))
    return total


def parse_oom_kills(text: str) -> int:
    """The `oom_kill N` line of memory.events or memory.oom_control (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
