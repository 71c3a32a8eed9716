"""`update` end to end: the Docker SDK and the CLI -> skiffd -> the cgroups of a running
container (read from inside it), the stored HostConfig, config.json for the next start, and
docker's errors."""

import os
import signal
import time

import pytest

pytestmark = [pytest.mark.root]

MiB = 1 << 20
MEMORY = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
PIDS = "/sys/fs/cgroup/pids/pids.max"
QUOTA = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"


def _v1_or_skip():
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("v1 file names; the v2 run is in test_resources_vm.py")


def _update(client, cid, **fields):
    api = client.api
    return api._result(api._post_json(api._url("/containers/{0}/update", cid), data=fields),
                       True)


def _read(container, path):
    code, out = container.exec_run(["cat", path])
    assert code == 0, out
    return out.decode().strip()


@pytest.fixture
def sleeper(daemon):
    client = daemon.client()
    container = client.containers.run("busybox", ["sleep", "300"], detach=True,
                                      mem_limit="64m")
    try:
        yield container
    finally:
        container.remove(force=True)


def test_update_changes_the_limits_of_a_running_container(daemon, sleeper):
    _v1_or_skip()
    client = daemon.client()
    assert _read(sleeper, MEMORY) == str(64 * MiB)
    reply = _update(client, sleeper.id, Memory=100 * MiB, MemorySwap=200 * MiB,
                    PidsLimit=17, CpuQuota=50000, CpuPeriod=100000)
    assert reply == {"Warnings": []}
    assert _read(sleeper, MEMORY) == str(100 * MiB)
    assert _read(sleeper, PIDS) == "17"
    assert _read(sleeper, QUOTA) == "50000"
    sleeper.reload()
    hc = sleeper.attrs["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["CpuQuota"]) == \
        (100 * MiB, 200 * MiB, 17, 50000)
    # a later start applies the updated limits (config.json was rewritten)
    sleeper.restart(timeout=0)
    assert _read(sleeper, MEMORY) == str(100 * MiB)
    assert _read(sleeper, PIDS) == "17"


def test_a_lowered_memory_limit_takes_effect_at_once(daemon, sleeper):
    client = daemon.client()
    code, _ = sleeper.exec_run(["dd", "if=/dev/zero", "of=/dev/null", "bs=40M", "count=1"])
    assert code == 0
    _update(client, sleeper.id, Memory=24 * MiB, MemorySwap=24 * MiB)
    code, _ = sleeper.exec_run(["dd", "if=/dev/zero", "of=/dev/null", "bs=40M", "count=1"])
    assert code == 137   # killed by the OOM killer under the new limit


def test_a_lowered_pids_limit_stops_a_fork(daemon, sleeper):
    client = daemon.client()
    _update(client, sleeper.id, PidsLimit=3)
    code, out = sleeper.exec_run(["sh", "-c", "sleep 5 & sleep 5 & sleep 5 & wait"])
    assert code != 0 and (b"fork" in out.lower() or b"resource" in out.lower()), out


def test_update_of_a_stopped_container_applies_at_start(daemon):
    _v1_or_skip()
    client = daemon.client()
    container = client.containers.create("busybox", ["sleep", "300"])
    try:
        container.update(mem_limit="48m", memswap_limit="96m", cpu_shares=512)
        container.start()
        assert _read(container, MEMORY) == str(48 * MiB)
        assert _read(container, "/sys/fs/cgroup/cpu/cpu.shares") == "512"
    finally:
        container.remove(force=True)


def test_dockers_errors(daemon, sleeper):
    import docker

    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as info:
        _update(client, sleeper.id, Memory=1 * MiB)
    assert info.value.status_code == 400
    assert "Minimum memory limit allowed is 6MB" in str(info.value)
    # created with -m 64m: memory+swap is 128m; a memory limit above it needs a new swap
    with pytest.raises(docker.errors.APIError) as info:
        _update(client, sleeper.id, Memory=300 * MiB)
    assert info.value.status_code == 409
    assert (f"Cannot update container {sleeper.id}: Memory limit should be smaller than "
            "already set memoryswap limit, update the memoryswap at the same time") \
        in str(info.value)
    with pytest.raises(docker.errors.NotFound) as info:
        _update(client, "no-such-container-u", Memory=100 * MiB)
    assert "No such container: no-such-container-u" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        _update(client, sleeper.id, RestartPolicy={"Name": "sometimes"})
    assert info.value.status_code == 400
    # nothing of a refused update was kept
    sleeper.reload()
    assert sleeper.attrs["HostConfig"]["Memory"] == 64 * MiB
    assert sleeper.attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_restart_policy_cannot_be_set_on_an_autoremove_container(daemon):
    import docker

    client = daemon.client()
    container = client.containers.run("busybox", ["sleep", "300"], detach=True, auto_remove=True)
    try:
        with pytest.raises(docker.errors.APIError) as info:
            _update(client, container.id, RestartPolicy={"Name": "always"})
        assert info.value.status_code == 409
        assert "Restart policy cannot be updated because AutoRemove is enabled" in \
            str(info.value)
    finally:
        container.remove(force=True)


def test_an_updated_restart_policy_brings_the_container_back(daemon, sleeper):
    client = daemon.client()
    _update(client, sleeper.id, RestartPolicy={"Name": "always", "MaximumRetryCount": 0})
    sleeper.reload()
    assert sleeper.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    os.kill(sleeper.attrs["State"]["Pid"], signal.SIGKILL)  # not a stop by hand
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sleeper.reload()
        if sleeper.attrs["RestartCount"] >= 1 and sleeper.attrs["State"]["Running"]:
            break
        time.sleep(0.1)
    assert sleeper.attrs["RestartCount"] == 1 and sleeper.attrs["State"]["Running"]


def test_cli_update(daemon, sleeper):
    _v1_or_skip()
    result = daemon.cli("update", "--pids-limit", "23", "--cpus", "0.5", sleeper.name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == sleeper.name + "\n"
    assert _read(sleeper, PIDS) == "23"
    assert _read(sleeper, QUOTA) == "50000"
    result = daemon.cli("update", sleeper.name)
    assert result.returncode == 1
    assert b"you must provide one or more flags when using this command" in result.stderr
    result = daemon.cli("update", "-m", "300m", sleeper.name, "no-such-container-u")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "Memory limit should be smaller than already set memoryswap limit" in err
    assert "No such container: no-such-container-u" in err
