"""Pausing a container and listing its processes, through the cgroups of its init.

    freeze(pid); thaw(pid)      # the freezer cgroup (v1: freezer.state; v2: cgroup.freeze)
    pids(pid) -> [host pids]    # every process in the init's cgroup

The cgroups are read from /proc/<pid>/cgroup, so this works whoever created them.
"""

import os
import time

from skiff.errors import RuntimeFailure

FREEZE_TIMEOUT = 5.0


def _dirs(pid: int):
    from . import host as _host
    from .exec import cgroup_dirs_of
    host = _host.current()
    dirs = cgroup_dirs_of(pid, host)
    if not dirs:
        raise RuntimeFailure(f"no cgroup found for process {pid}")
    return host, dirs


def _freezer_dir(pid: int):
    host, dirs = _dirs(pid)
    if host.cgroup_v2:
        return True, dirs[0][1]
    for h, d in dirs:
        if "freezer" in h.controllers:
            return False, d
    raise RuntimeFailure("the freezer cgroup is not available on this host")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _set(pid: int, frozen: bool) -> None:
    v2, d = _freezer_dir(pid)
    deadline = time.monotonic() + FREEZE_TIMEOUT
    while True:
        if v2:
            _write(os.path.join(d, "cgroup.freeze"), "1" if frozen else "0")
            events = _read(os.path.join(d, "cgroup.events"))
            done = f"frozen {1 if frozen else 0}" in events
        else:
            want = "FROZEN" if frozen else "THAWED"
            _write(os.path.join(d, "freezer.state"), want)
            done = _read(os.path.join(d, "freezer.state")).strip() == want
        if done:
            return
        if time.monotonic() > deadline:
            if frozen:  # never leave a container half frozen
                _set(pid, False)
            raise RuntimeFailure(f"unable to {'freeze' if frozen else 'thaw'} the container")
        time.sleep(0.001)


def freeze(pid: int) -> None:
    _set(pid, True)


def thaw(pid: int) -> None:
    _set(pid, False)


def pids(pid: int) -> list:
    """The host pids of every process in the cgroup of `pid`."""
    host, dirs = _dirs(pid)
    order = sorted(dirs, key=lambda hd: 0 if ("pids" in hd[0].controllers or
                                               not hd[0].controllers) else 1)
    for _h, d in order:
        try:
            return [int(p) for p in _read(os.path.join(d, "cgroup.procs")).split()]
        except OSError:
            continue
    return [pid]


def thaw_if_frozen(pid: int) -> None:
    """Thaw the cgroup of `pid` if it is frozen (a SIGKILL takes effect once thawed); a
    container without a freezer cgroup, or gone already, is left alone."""
    try:
        v2, d = _freezer_dir(pid)
        if v2:
            frozen = "frozen 1" in _read(os.path.join(d, "cgroup.events"))
        else:
            frozen = _read(os.path.join(d, "freezer.state")).strip() != "THAWED"
        if frozen:
            _set(pid, False)
    except (OSError, RuntimeFailure):
        pass
