"""Resource limits for real: a HostConfig, translated by skiff.engine.hostconfig, run by
skiff.runtime, and each limit shown to take effect from inside the container.

Runs on this machine's cgroup v1 (hybrid) hierarchy, and on a pure cgroup v2 one inside
scripts/cgroup2-vm.sh (tests/integration/test_resources_vm.py runs this file there).
"""

import os
import re
import shutil
import signal
import tempfile
import time

import pytest

from skiff.errors import InvalidArgument

from .test_runtime_bundles import (cgroup_leftovers, make_config, make_rootfs, mounts_under,
                                   new_id, remove_cgroup_parent, scratch_dir, write_bundle)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]

MiB = 1 << 20


def v2() -> bool:
    from skiff.runtime import host
    return host.current().cgroup_v2


@pytest.fixture(scope="module")
def world():
    from skiff.runtime import cgroups, host
    tmp = tempfile.mkdtemp(prefix="skiff-res-", dir=scratch_dir())
    parent = f"skiff-res-test-{os.getpid()}"
    parent_dirs = [d for _h, d in cgroups.paths(parent, "x", host.current())]
    try:
        lower = make_rootfs(os.path.join(tmp, "lower"))
        yield {"tmp": tmp, "lower": lower, "parent": parent, "parent_dirs": parent_dirs}
    finally:
        remove_cgroup_parent(parent)
        shutil.rmtree(tmp, ignore_errors=True)


class Box:
    def __init__(self, world):
        self.world = world

    def bundle(self, args, host_config=None, lookup=None):
        from skiff.engine import hostconfig
        cid = new_id("res")
        spec = make_config(args, f"{self.world['parent']}/{cid}",
                           root_path=self.world["lower"])
        spec["root"]["readonly"] = True
        spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                               "options": ["mode=1777"]})
        warnings = hostconfig.apply(spec, host_config or {}, lookup=lookup)
        path = write_bundle(os.path.join(self.world["tmp"], cid), spec)
        return path, cid, warnings

    def run(self, args, host_config=None, timeout=60, lookup=None):
        """(exit code as docker reports it, output, seconds, oom kills counted)."""
        from skiff import runtime
        from skiff.monitor import oom
        bundle, cid, _w = self.bundle(args, host_config, lookup)
        r, w = os.pipe()
        pid = None
        started = time.monotonic()
        try:
            try:
                pid = runtime.spawn(bundle, cid, stdio=(os.open("/dev/null", os.O_RDONLY),
                                                        w, w))
            finally:
                os.close(w)
            out = b""
            deadline = started + timeout
            while time.monotonic() < deadline:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                out += chunk
            _, status = os.waitpid(pid, 0)
            pid = None
            took = time.monotonic() - started
            code = os.waitstatus_to_exitcode(status)
            kills = oom.count(_config(bundle), cid)
            return (128 - code if code < 0 else code), out.decode(errors="replace"), took, kills
        finally:
            os.close(r)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            runtime.cleanup(bundle, cid)


def _config(bundle):
    import json
    with open(os.path.join(bundle, "config.json")) as f:
        return json.load(f)


@pytest.fixture
def box(world):
    yield Box(world)
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


# dd reads 64 MiB of zeros into one buffer, which it must touch: charged to its cgroup.
BIG = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]


def test_memory_limit_kills_and_is_reported_as_oom(box):
    code, out, _t, kills = box.run(BIG, {"Memory": 32 * MiB, "MemorySwap": 32 * MiB})
    assert code == 137, out
    assert kills >= 1
    # the same command within its limit: no kill, nothing counted
    code, out, _t, kills = box.run(BIG, {"Memory": 128 * MiB, "MemorySwap": 128 * MiB})
    assert (code, kills) == (0, 0), out


def test_memory_files_hold_limit_reservation_and_swap(box):
    if v2():
        files = ["memory.max", "memory.low", "memory.swap.max"]
        want = [str(64 * MiB), str(16 * MiB), str(64 * MiB)]
    else:
        files = ["memory/memory.limit_in_bytes", "memory/memory.soft_limit_in_bytes"]
        want = [str(64 * MiB), str(16 * MiB)]
        if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
            files.append("memory/memory.memsw.limit_in_bytes")
            want.append(str(128 * MiB))
    code, out, _t, _k = box.run(
        ["cat"] + [f"/sys/fs/cgroup/{f}" for f in files],
        {"Memory": 64 * MiB, "MemoryReservation": 16 * MiB, "MemorySwap": 128 * MiB})
    assert code == 0, out
    assert out.split() == want


def test_pids_limit_stops_a_fork_bomb(box):
    # Every bomb forks bombs for ever (busybox's sh exits when a fork fails, so the bombs
    # churn at the limit). PID 1 forks nothing after starting it: it waits with a builtin
    # loop, samples the number of processes, and reads how many forks the kernel refused.
    events = "/sys/fs/cgroup/pids.events" if v2() else "/sys/fs/cgroup/pids/pids.events"
    script = ("bomb() { while :; do bomb & done; }; (bomb) >/dev/null 2>&1 & "
              "most=0; s=0; while [ $s -lt 20 ]; do s=$((s+1)); "
              "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; "
              "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; "
              "[ $n -gt $most ] && most=$n; done; echo most=$most; "
              f"read -r line < {events}; echo \"events=$line\"")
    code, out, _t, _k = box.run(["sh", "-c", script], {"PidsLimit": 20})
    # PID 1 lived to report; the bomb reached the limit (the kernel refused forks) and the
    # processes never outnumbered it (the churn may have died down by the time it samples)
    most = re.findall(r"most=(\d+)", out)
    assert most and 1 <= int(most[0]) <= 20, out
    refused = re.findall(r"events=max (\d+)", out)
    assert refused and int(refused[0]) > 0, out


def test_pids_limit_counts_forks_exactly(box):
    # a subshell starts sleeps until the kernel refuses a fork, and then exits: PID 1, the
    # subshell and its sleeps made the limit, so one less is left
    script = ("(while :; do sleep 30 & done) 2>/dev/null; "
              "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n")
    code, out, _t, _k = box.run(["sh", "-c", script], {"PidsLimit": 8})
    assert "procs=7" in out, out
    code, out, _t, _k = box.run(["sh", "-c", script], {"PidsLimit": 13})
    assert "procs=12" in out, out


def _busy(box, host_config) -> tuple[float, int, int]:
    """(CPU seconds used, CFS periods, periods throttled) of two busy loops run for 1.5 s."""
    if v2():
        usage = "sed -n 's/^usage_usec //p' /sys/fs/cgroup/cpu.stat"
        stat = "/sys/fs/cgroup/cpu.stat"
    else:
        usage = "echo $(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 ))"
        stat = "/sys/fs/cgroup/cpu/cpu.stat"
    script = ("spin() { while :; do :; done; }; spin & a=$!; spin & b=$!; sleep 1.5; "
              f"kill $a $b; echo usage=$({usage}); "
              f"echo periods=$(sed -n 's/^nr_periods //p' {stat}); "
              f"echo throttled=$(sed -n 's/^nr_throttled //p' {stat})")
    code, out, _t, _k = box.run(["sh", "-c", script], host_config)
    # (on v2 the counters of periods exist only where the cpu controller is enabled)
    found = [re.findall(rf"{key}=(\d*)", out) for key in ("usage", "periods", "throttled")]
    assert all(found) and found[0][0], out
    return int(found[0][0]) / 1e6, int(found[1][0] or 0), int(found[2][0] or 0)


def test_cpu_quota_caps_usage(box):
    # In each CFS period the container may use at most its quota: usage <= quota x periods
    # (a kernel invariant, whatever else loads the machine or how slow a VM is), and the
    # kernel counts the periods in which it stopped the container. Without a quota it
    # never does, and two busy loops use more than the quota would let them.
    free, _periods, free_throttled = _busy(box, {})
    assert free_throttled == 0
    for host_config, quota_us in (({"NanoCpus": 200_000_000}, 20000),          # --cpus 0.2
                                  ({"CpuPeriod": 50000, "CpuQuota": 15000}, 15000)):
        used, periods, throttled = _busy(box, host_config)
        assert throttled >= 5, (host_config, used, periods, throttled)
        assert 0.02 < used <= (periods + 2) * quota_us / 1e6, (host_config, used, periods)
        assert free > used, (free, used)


def test_cpu_shares_and_cpuset(box):
    if v2():
        show = "cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus"
    else:
        show = "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus"
    code, out, _t, _k = box.run(["sh", "-c", show + "; grep Cpus_allowed_list /proc/self/status"],
                                {"CpuShares": 512, "CpusetCpus": "0"})
    lines = out.split("\n")
    assert lines[0] == ("20" if v2() else "512"), out
    assert lines[1] == "0"
    assert lines[2].split() == ["Cpus_allowed_list:", "0"]


def test_ulimits_and_shm_size(box):
    code, out, _t, _k = box.run(
        ["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c; df -k /dev/shm | tail -1"],
        {"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200},
                     {"Name": "core", "Soft": 0, "Hard": 0}], "ShmSize": 8 * MiB})
    lines = out.splitlines()
    assert lines[:3] == ["100", "200", "0"], out
    assert lines[3].split()[1] == "8192"


def test_ulimit_above_the_daemons_hard_limit_needs_cap_sys_resource(box):
    import resource
    from skiff.engine import hostconfig
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": hard + 1}]}
    if "CAP_SYS_RESOURCE" in hostconfig.HostFacts().held_capabilities:
        # the daemon may raise its own limit, so the container gets what it asked for
        code, out, _t, _k = box.run(["sh", "-c", "ulimit -Hn"], wanted)
        assert (code, out.strip()) == (0, str(hard + 1)), out
    else:
        with pytest.raises(InvalidArgument, match="hard limit .* above the daemon's own"):
            box.bundle(["true"], wanted)


@pytest.fixture
def block_device():
    """A block device we may read: a loop device over a scratch file (detached at the end),
    or else the first readable disk."""
    import subprocess
    path = os.path.join(scratch_dir(), f"skiff-blk-{os.getpid()}.img")
    loop = None
    try:
        if shutil.which("losetup"):
            with open(path, "wb") as f:
                f.truncate(8 * MiB)
            done = subprocess.run(["losetup", "-f", "--show", path], capture_output=True,
                                  text=True)
            if done.returncode == 0:
                loop = done.stdout.strip()
        if loop is None:
            for name in sorted(os.listdir("/sys/block")):
                candidate = f"/dev/{name}"
                try:
                    os.close(os.open(candidate, os.O_RDONLY))
                except OSError:
                    continue
                yield candidate
                return
            pytest.skip("no readable block device")
        yield loop
    finally:
        if loop is not None:
            subprocess.run(["losetup", "-d", loop])
        if os.path.exists(path):
            os.unlink(path)


def test_block_io_throttle_slows_direct_reads(box, block_device):
    disk = block_device
    read = ["dd", "if=/dev/xdisk", "of=/dev/null", "bs=256k", "count=8", "iflag=direct"]
    device = [{"PathOnHost": disk, "PathInContainer": "/dev/xdisk",
               "CgroupPermissions": "r"}]
    code, out, free, _k = box.run(read, {"Devices": device})
    assert code == 0, out
    code, out, slow, _k = box.run(read, {"Devices": device, "BlkioDeviceReadBps": [
        {"Path": disk, "Rate": 1 * MiB}]})
    assert code == 0, out
    # 2 MiB at 1 MiB/s: one to two seconds (a first slice may go at once)
    assert slow > 0.9 and slow > free + 0.5, (free, slow)


def test_oom_kill_disable_on_v1(box):
    if v2():
        from skiff.engine import hostconfig
        spec = make_config(["true"], "x")
        warnings = hostconfig.apply(spec, {"Memory": 32 * MiB, "OomKillDisable": True})
        assert "Your kernel does not support OomKillDisable. OomKillDisable discarded." in \
            warnings
        return
    code, out, _t, _k = box.run(["cat", "/sys/fs/cgroup/memory/memory.oom_control"],
                                {"Memory": 32 * MiB, "OomKillDisable": True})
    assert "oom_kill_disable 1" in out, out
