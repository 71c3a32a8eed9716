"""--runtime: one set of container tests run once per OCI runtime (skiff-runtime, runc, crun)
through skiffd, each runtime driven by skiff-monitor with runc's command line.

crun 1.8 alone refuses a hybrid cgroup layout (this machine's); skiff-monitor runs every
runtime in a view of such a host as plain v1 (runtime/hybrid.py), so crun runs here too."""

import os
import shutil
import signal
import time

import pytest

pytestmark = [pytest.mark.root]

RUNTIMES = ["skiff", "runc", "crun"]


@pytest.fixture(params=RUNTIMES)
def runtime(request, daemon):
    name = request.param
    if name != "skiff" and not shutil.which(name):
        pytest.skip(f"{name} is not installed")
    return name


def _rootfs_mounted(daemon, cid):
    return os.path.ismount(os.path.join(daemon.root, "containers", cid, "rootfs"))


def test_run_logs_exit_code_and_inspect(daemon, runtime):
    client = daemon.client()
    container = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2; exit 3"],
                                      runtime=runtime, detach=True)
    try:
        assert container.wait(timeout=30)["StatusCode"] == 3
        assert container.logs(stdout=True, stderr=False) == b"out\n"
        assert container.logs(stdout=False, stderr=True) == b"err\n"
        container.reload()
        assert container.attrs["HostConfig"]["Runtime"] == runtime
        assert not _rootfs_mounted(daemon, container.id)   # the runtime's rootfs is gone
    finally:
        container.remove(force=True)


def test_isolation_and_default_seccomp(daemon, runtime):
    """A default container under any runtime: its own pid namespace, docker's capabilities,
    a seccomp filter that refuses mount and unshare of namespaces."""
    client = daemon.client()
    out = client.containers.run(
        "busybox", ["sh", "-c", "echo pid=$$; grep -E '^(CapBnd|Seccomp):' /proc/self/status; "
                                "unshare -n true && echo unshared || echo refused"],
        runtime=runtime, remove=True).decode()
    assert "pid=1\n" in out
    assert "Seccomp:\t2" in out
    assert "CapBnd:\t00000000a80425fb" in out
    assert "refused" in out and "unshared" not in out


def test_exec_stop_kill_pause(daemon, runtime):
    client = daemon.client()
    container = client.containers.run(
        "busybox", ["sh", "-c", "trap 'echo term; exit 9' TERM; while true; do sleep 0.1; done"],
        runtime=runtime, detach=True)
    try:
        code, out = container.exec_run(["sh", "-c", "echo in-$HOSTNAME; exit 4"])
        assert (code, out) == (4, f"in-{container.id[:12]}\n".encode())
        code, out = container.exec_run(["no-such-binary"])
        assert code == 127
        code, out = container.exec_run(["tty"], tty=True)
        assert code == 0 and out.startswith(b"/dev/pts/")
        container.pause()
        container.reload()
        assert container.attrs["State"]["Status"] == "paused"
        container.unpause()
        stats = container.stats(stream=False)
        assert stats["pids_stats"]["current"] >= 1
        container.stop(timeout=10)
        container.reload()
        assert container.attrs["State"]["ExitCode"] == 9
        assert b"term\n" in container.logs()
        container.start()
        container.kill(signal="SIGKILL")
        assert container.wait(timeout=30)["StatusCode"] == 137
    finally:
        container.remove(force=True)


def test_limits_apply(daemon, runtime):
    client = daemon.client()
    out = client.containers.run(
        "busybox", ["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max "
                                "2>/dev/null; true"],
        runtime=runtime, pids_limit=21, remove=True)
    assert out.split() == [b"21"]
    container = client.containers.run("busybox", ["sleep", "300"], runtime=runtime,
                                      detach=True, mem_limit="64m")
    try:
        container.update(mem_limit="24m", memswap_limit="24m")
        code, _ = container.exec_run(["dd", "if=/dev/zero", "of=/dev/null", "bs=40M",
                                      "count=1"])
        assert code == 137
    finally:
        container.remove(force=True)


def test_tty_run(daemon, runtime):
    result = daemon.cli("run", "--rm", "-t", "--runtime", runtime, "busybox", "tty")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"/dev/pts/")


def test_failed_start_says_why_and_leaves_nothing(daemon, runtime):
    import docker

    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.run("busybox", ["no-such-binary"], runtime=runtime, name=f"bad-{runtime}")
    assert "no-such-binary" in str(info.value) and "not found" in str(info.value)
    container = client.containers.get(f"bad-{runtime}")
    try:
        assert container.attrs["State"]["ExitCode"] == 127
        assert not _rootfs_mounted(daemon, container.id)
    finally:
        container.remove(force=True)


def test_containers_survive_a_daemon_restart(daemon, runtime):
    client = daemon.client()
    container = client.containers.run(
        "busybox", ["sh", "-c", "while true; do echo tick; sleep 0.1; done"],
        runtime=runtime, detach=True)
    try:
        pid = client.api.inspect_container(container.id)["State"]["Pid"]
        daemon.stop()
        daemon.start()
        client = daemon.client()
        state = client.api.inspect_container(container.id)["State"]
        assert state["Running"] and state["Pid"] == pid
        code, out = client.containers.get(container.id).exec_run(["echo", "still"])
        assert (code, out) == (0, b"still\n")
        client.containers.get(container.id).kill()
        assert client.api.wait(container.id, timeout=30)["StatusCode"] == 137
        assert b"tick" in client.api.logs(container.id)
    finally:
        daemon.client().api.remove_container(container.id, force=True)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unknown_runtime_and_init(daemon):
    import docker

    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as info:
        client.containers.create("busybox", ["true"], runtime="no-such-runtime")
    assert info.value.status_code == 400
    assert "unknown or invalid runtime name: no-such-runtime" in str(info.value)
    if shutil.which("runc"):
        with pytest.raises(docker.errors.APIError) as info:
            client.containers.create("busybox", ["true"], runtime="runc", init=True)
        assert info.value.status_code == 400


def test_info_lists_runtimes(daemon):
    info = daemon.client().info()
    assert info["DefaultRuntime"] == "skiff"
    assert info["Runtimes"]["skiff"] == {"path": "skiff-runtime"}
    if shutil.which("runc"):
        assert info["Runtimes"]["runc"] == {"path": shutil.which("runc")}
