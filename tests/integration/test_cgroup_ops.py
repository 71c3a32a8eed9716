"""Operations on a running container's cgroups, on cgroup v1 here and on a pure cgroup v2
hierarchy inside scripts/cgroup2-vm.sh (test_resources_vm.py runs this file there):
pause/unpause (freezer.state on v1, cgroup.freeze on v2) and `update` (new limits written
live, in an order the kernel accepts)."""

import os
import select
import signal
import time

import pytest

from .test_resources import MiB, Box, v2, world  # noqa: F401  (world is a fixture)
from .test_runtime_bundles import cgroup_leftovers, mounts_under

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]


class Running:
    """A container started with runtime.spawn, its output on a pipe, killed and cleaned up
    at the end."""

    def __init__(self, world, args, host_config=None):
        from skiff import runtime
        self.bundle, self.cid, _w = Box(world).bundle(args, host_config)
        self.r, w = os.pipe()
        try:
            self.pid = runtime.spawn(self.bundle, self.cid,
                                     stdio=(os.open("/dev/null", os.O_RDONLY), w, w))
        finally:
            os.close(w)

    def read_for(self, seconds: float) -> bytes:
        out, deadline = b"", time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.r], [], [], left)
            if not ready:
                break
            chunk = os.read(self.r, 65536)
            if not chunk:
                break
            out += chunk
        return out

    def wait_output(self, seconds: float) -> bytes:
        ready, _, _ = select.select([self.r], [], [], seconds)
        return os.read(self.r, 65536) if ready else b""

    def cgroup_file(self, controller: str, name: str) -> str:
        from skiff.runtime import host
        from skiff.runtime.exec import cgroup_dirs_of
        for h, d in cgroup_dirs_of(self.pid, host.current()):
            if host.current().cgroup_v2 or controller in h.controllers:
                with open(os.path.join(d, name)) as f:
                    return f.read().strip()
        raise AssertionError(f"no {controller} cgroup")

    def close(self):
        from skiff import runtime
        from skiff.runtime import freezer
        try:
            os.kill(self.pid, signal.SIGKILL)
            freezer.thaw_if_frozen(self.pid)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.r)
        runtime.cleanup(self.bundle, self.cid)


@pytest.fixture
def running(world):
    made = []

    def start(args, host_config=None):
        made.append(Running(world, args, host_config))
        return made[-1]
    yield start
    for c in made:
        c.close()
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


TICKER = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"]


def test_pause_stops_every_process_and_unpause_resumes(running):
    from skiff.runtime import freezer
    c = running(TICKER)
    assert c.wait_output(10)   # it ticks
    freezer.freeze(c.pid)
    if v2():
        assert c.cgroup_file("", "cgroup.freeze") == "1"
        assert "frozen 1" in c.cgroup_file("", "cgroup.events")
    else:
        assert c.cgroup_file("freezer", "freezer.state") == "FROZEN"
    c.read_for(0.3)   # what was written before the freeze
    assert c.read_for(1.5) == b""   # frozen: not one tick
    freezer.thaw(c.pid)
    assert c.wait_output(10)   # ticking again
    if v2():
        assert c.cgroup_file("", "cgroup.freeze") == "0"
    else:
        assert c.cgroup_file("freezer", "freezer.state") == "THAWED"


def test_a_paused_container_can_be_killed(running):
    from skiff.runtime import freezer
    c = running(["sleep", "300"])
    freezer.freeze(c.pid)
    os.kill(c.pid, signal.SIGKILL)
    freezer.thaw_if_frozen(c.pid)   # what skiff-monitor's kill does
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pid, _status = os.waitpid(c.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.05)
    else:
        pytest.fail("a killed paused container did not die")


def test_update_writes_new_limits_live(running):
    from skiff.runtime.update import update_resources
    c = running(["sleep", "300"], {"Memory": 64 * MiB, "MemorySwap": 128 * MiB,
                                   "PidsLimit": 50})
    update_resources(c.pid, {"memory": {"limit": 32 * MiB, "swap": 32 * MiB},
                             "pids": {"limit": 7},
                             "cpu": {"quota": 20000, "period": 100000, "shares": 512}})
    assert c.cgroup_file("pids", "pids.max") == "7"
    if v2():
        assert c.cgroup_file("memory", "memory.max") == str(32 * MiB)
        assert c.cgroup_file("memory", "memory.swap.max") == "0"
        assert c.cgroup_file("cpu", "cpu.max") == "20000 100000"
        assert c.cgroup_file("cpu", "cpu.weight") == "20"
    else:
        assert c.cgroup_file("memory", "memory.limit_in_bytes") == str(32 * MiB)
        assert c.cgroup_file("cpu", "cpu.cfs_quota_us") == "20000"
        assert c.cgroup_file("cpu", "cpu.shares") == "512"
    # up again, past the old memory+swap limit: the order of the writes matters on v1
    update_resources(c.pid, {"memory": {"limit": 256 * MiB, "swap": 512 * MiB}})
    if v2():
        assert c.cgroup_file("memory", "memory.max") == str(256 * MiB)
        assert c.cgroup_file("memory", "memory.swap.max") == str(256 * MiB)
    else:
        assert c.cgroup_file("memory", "memory.limit_in_bytes") == str(256 * MiB)
        if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
            assert c.cgroup_file("memory", "memory.memsw.limit_in_bytes") == str(512 * MiB)


def test_a_lowered_limit_takes_effect(running):
    from skiff.runtime.update import update_resources
    c = running(["sh", "-c", "sleep 0.5; for i in 1 2 3 4 5 6; do sleep 30 & done; "
                             "wait; echo done"], {"PidsLimit": 50})
    update_resources(c.pid, {"pids": {"limit": 3}})
    out = c.read_for(5).decode()
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
