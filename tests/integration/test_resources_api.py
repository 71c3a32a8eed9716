"""Limits and OOM detection end to end: the Docker SDK -> skiffd -> config.json -> runtime ->
monitor -> `State.OOMKilled`.

These need two hooks in files owned by the daemon's lifecycle work (requested in issue 4's
note): `engine/containers.py` passing `host_config=` to `bundle.build_spec`, and
`monitor/server.py` recording `skiff.monitor.oom.oom_killed(...)` in the exit. Until each
hook is in, the test that needs it is skipped with that reason (checked on the bundle the
daemon wrote, so the skip goes away by itself once the hook lands).
"""

import json
import os

import pytest

pytestmark = [pytest.mark.root]

MiB = 1 << 20


def _spec_of(daemon, cid):
    with open(os.path.join(daemon.root, "containers", cid, "config.json")) as f:
        return json.load(f)


def _needs_host_config_hook(daemon, container):
    resources = _spec_of(daemon, container.id)["linux"].get("resources") or {}
    if "memory" not in resources:
        pytest.skip("engine/containers.py does not pass HostConfig to bundle.build_spec yet")


def test_memory_limit_oom_kill_is_reported(daemon):
    client = daemon.client()
    container = client.containers.create(
        "busybox", ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        mem_limit="32m", memswap_limit="32m")
    try:
        _needs_host_config_hook(daemon, container)
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 137
        container.reload()
        state = container.attrs["State"]
        assert state["ExitCode"] == 137
        if not state["OOMKilled"] and "oom.oom_killed" not in open(_monitor_source()).read():
            pytest.skip("monitor/server.py does not record OOM kills yet")
        assert state["OOMKilled"] is True
    finally:
        container.remove(force=True)


def _monitor_source():
    from skiff.monitor import server
    return server.__file__


def test_pids_limit_and_cpus_through_the_api(daemon):
    client = daemon.client()
    container = client.containers.create(
        "busybox", ["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max "
                                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max "
                                "2>/dev/null; true"],
        pids_limit=33, nano_cpus=500_000_000, mem_limit="64m")
    try:
        _needs_host_config_hook(daemon, container)
        container.start()
        assert container.wait(timeout=60)["StatusCode"] == 0
        out = container.logs().decode().split()
        assert out[:2] == ["33", "50000"], out
    finally:
        container.remove(force=True)


def test_bad_limits_are_refused_with_dockers_words(daemon):
    import docker
    client = daemon.client()
    probe = client.containers.create("busybox", ["true"], mem_limit="64m")
    try:
        _needs_host_config_hook(daemon, probe)
    finally:
        probe.remove(force=True)
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", ["true"], mem_limit="4m")
    assert info.value.status_code == 400
    assert "Minimum memory limit allowed is 6MB" in str(info.value)
