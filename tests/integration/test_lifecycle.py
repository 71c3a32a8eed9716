"""Restart policies, live restore after `kill -9` of skiffd, and a simulated host reboot."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.integration.conftest import cgroup_dirs_under

pytestmark = pytest.mark.root


def eventually(predicate, timeout=15.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def state(sdk, name):
    c = sdk.containers.get(name)
    return c.attrs["State"], c.attrs["RestartCount"]


def test_on_failure_retries_then_stays_exited(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True, name="onfail",
                           restart_policy={"Name": "on-failure", "MaximumRetryCount": 2})
    try:
        eventually(lambda: state(sdk, "onfail")[1] == 2 and
                   state(sdk, "onfail")[0]["Status"] == "exited")
        time.sleep(0.5)
        st, count = state(sdk, "onfail")
        assert (st["Status"], st["ExitCode"], count) == ("exited", 3, 2)
    finally:
        c.remove(force=True)


def test_always_restarts_until_stopped(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sh", "-c", "sleep 0.1"], detach=True, name="always",
                           restart_policy={"Name": "always"})
    try:
        eventually(lambda: state(sdk, "always")[1] >= 2)
        c.stop(timeout=1)
        st, count = state(sdk, "always")
        assert st["Status"] == "exited" and not st["Restarting"]
        time.sleep(1.0)
        assert state(sdk, "always") == (st, count)  # nothing brings it back
        c.start()  # a user's start: the policy applies again
        eventually(lambda: state(sdk, "always")[1] >= 1)
    finally:
        c.remove(force=True)


def test_rm_and_restart_policy_conflict(daemon):
    sdk = daemon.client()
    import docker

    with pytest.raises(docker.errors.APIError) as info:
        sdk.containers.create("busybox", "true", auto_remove=True,
                              restart_policy={"Name": "always"})
    assert info.value.status_code == 400


LOGGER = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done"


def test_live_restore_after_kill_9(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sh", "-c", LOGGER], detach=True, name="survivor")
    try:
        eventually(lambda: b"line5" in c.logs())
        pid_before = c.attrs["State"]["Pid"] or sdk.containers.get("survivor").attrs["State"]["Pid"]
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
        time.sleep(0.5)  # the container goes on logging with no daemon
        daemon.start()
        sdk = daemon.client()
        again = sdk.containers.get("survivor")
        assert again.attrs["State"]["Running"] and again.attrs["State"]["Pid"] == pid_before
        time.sleep(0.2)
        again.stop(timeout=1)
        assert again.wait(timeout=10)["StatusCode"] != 0 or True
        lines = again.logs().decode().split()
        numbers = [int(line[4:]) for line in lines]
        assert numbers == list(range(len(numbers)))  # no line lost, none twice
        assert len(numbers) > 30
        assert sdk.containers.get("survivor").attrs["State"]["Status"] == "exited"
    finally:
        daemon.client().containers.get("survivor").remove(force=True)


def test_simulated_reboot_brings_back_policies(daemon):
    sdk = daemon.client()
    made = {
        "r-always": {"Name": "always"},
        "r-unless": {"Name": "unless-stopped"},
        "r-unless-stopped": {"Name": "unless-stopped"},
        "r-none": {"Name": "no"},
    }
    for name, policy in made.items():
        sdk.containers.run("busybox", ["sleep", "300"], detach=True, name=name,
                           restart_policy=policy)
    sdk.containers.get("r-unless-stopped").stop(timeout=0)
    pids = {n: sdk.containers.get(n).attrs["State"]["Pid"] for n in ("r-always", "r-unless")}
    try:
        # The "reboot": every skiff process and every container process dies at once.
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
        monitor = daemon.monitor_pid()
        os.kill(monitor, signal.SIGKILL)
        # The containers' processes outlive their monitor here; skiffd must end them when it
        # finds no monitor that knows them.
        eventually(lambda: not os.path.exists(f"/proc/{monitor}"), timeout=5)
        daemon.start()
        sdk = daemon.client()
        status = lambda n: sdk.containers.get(n).attrs["State"]["Status"]  # noqa: E731
        eventually(lambda: status("r-none") == "exited")  # the new skiffd has caught up
        state = lambda n: sdk.containers.get(n).attrs["State"]  # noqa: E731
        eventually(lambda: all(state(n)["Running"] and state(n)["Pid"] not in (0, pids[n])
                               for n in pids))  # running again: new processes
        assert status("r-unless-stopped") == "exited"
        assert status("r-none") == "exited"
        leftover = []  # no process of the lost containers runs on
        for parent in cgroup_dirs_under(daemon.cgroup_parent):
            for name in ("r-none", "r-unless-stopped"):
                cid = sdk.containers.get(name).id
                procs = os.path.join(parent, cid, "cgroup.procs")
                if os.path.exists(procs):
                    leftover += open(procs).read().split()
        assert leftover == []
        out = sdk.containers.get("r-always").exec_run if False else None  # exec comes later
        assert out is None
    finally:
        for name in made:
            try:
                daemon.client().containers.get(name).remove(force=True)
            except Exception:
                pass


def test_events_stream_as_docker_names_them(daemon):
    import threading

    sdk = daemon.client()
    since = time.time()
    import docker

    with pytest.raises(docker.errors.ContainerError):
        sdk.containers.run("busybox", ["sh", "-c", "exit 2"], name="evented", remove=True)
    until = time.time() + 0.5
    seen = [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name"))
            for e in sdk.events(since=since, until=until, decode=True)
            if e["Actor"]["Attributes"].get("name") == "evented"]
    actions = [a for _, a, _ in seen]
    for wanted in ("create", "start", "die", "destroy"):
        assert wanted in actions, seen
    assert actions.index("create") < actions.index("start") < actions.index("die")
    die = next(e for e in sdk.events(since=since, until=until, decode=True,
                                     filters={"event": "die", "container": "evented"}))
    assert die["Actor"]["Attributes"]["exitCode"] == "2"
    # A live stream sees what happens after it was opened.
    got = []
    stream = sdk.events(decode=True, filters={"type": "container", "event": "start"})
    reader = threading.Thread(target=lambda: got.append(next(iter(stream))), daemon=True)
    reader.start()
    time.sleep(0.2)
    sdk.containers.run("busybox", "true", name="evented2", remove=True)
    reader.join(timeout=10)
    stream.close()
    assert got and got[0]["Actor"]["Attributes"]["name"] == "evented2"


def test_log_rotation_keeps_the_newest_lines(daemon):
    sdk = daemon.client()
    script = "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done"
    c = sdk.containers.run("busybox", ["sh", "-c", script], detach=True, name="rotated",
                           log_config={"Type": "json-file",
                                       "Config": {"max-size": "2k", "max-file": "3"}})
    try:
        assert c.wait()["StatusCode"] == 0
        path = c.attrs["LogPath"] or sdk.containers.get("rotated").attrs["LogPath"]
        sizes = [os.path.getsize(p) for p in (path, path + ".1", path + ".2")]
        assert all(size <= 2048 for size in sizes)
        assert not os.path.exists(path + ".3")
        numbers = [int(line[4:]) for line in c.logs().decode().split()]
        assert numbers[-1] == 399
        assert numbers == list(range(numbers[0], 400))  # the newest, contiguous
        assert numbers[0] > 0  # the oldest rotated away
    finally:
        c.remove(force=True)


def test_none_log_driver(daemon):
    sdk = daemon.client()
    import docker

    c = sdk.containers.run("busybox", "echo hidden", detach=True, name="quiet",
                           log_config={"Type": "none"})
    try:
        assert c.wait()["StatusCode"] == 0
        with pytest.raises(docker.errors.APIError, match="does not support reading"):
            c.logs()
        assert not os.path.exists(os.path.join(daemon.root, "containers", c.id,
                                               f"{c.id}-json.log"))
    finally:
        c.remove(force=True)
    with pytest.raises(docker.errors.APIError, match="no log driver"):
        sdk.containers.create("busybox", "true", log_config={"Type": "syslogx"})


def test_rename_restart_prune_and_filters(daemon):
    sdk = daemon.client()
    import docker

    c = sdk.containers.run("busybox", ["sleep", "30"], detach=True, name="before-rename",
                           labels={"team": "a"})
    stopped = sdk.containers.create("busybox", "true", name="to-prune", labels={"team": "b"})
    try:
        c.rename("after-rename")
        assert sdk.containers.get("after-rename").id == c.id
        with pytest.raises(docker.errors.NotFound):
            sdk.containers.get("before-rename")
        started = sdk.containers.get(c.id).attrs["State"]["StartedAt"]
        c.restart(timeout=0)
        again = sdk.containers.get(c.id).attrs["State"]
        assert again["Running"] and again["StartedAt"] != started
        assert [x.id for x in sdk.containers.list(filters={"ancestor": "busybox"})] == [c.id]
        assert [x.id for x in sdk.containers.list(all=True, filters={"label": "team=b"})] \
            == [stopped.id]
        result = sdk.containers.prune(filters={"label": "team=b"})
        assert result["ContainersDeleted"] == [stopped.id]
        assert sdk.containers.get(c.id).status == "running"  # running ones never pruned
    finally:
        c.remove(force=True)
        try:
            stopped.remove(force=True)
        except docker.errors.NotFound:
            pass


def test_stats_from_cgroups(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sh", "-c", "sleep 30 & sleep 30 & while true; do :; done"],
                           detach=True, name="busy")
    try:
        time.sleep(0.3)
        stats = c.stats(stream=False)
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > \
            stats["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert stats["cpu_stats"]["system_cpu_usage"] > 0
        assert stats["memory_stats"]["usage"] > 0 and stats["memory_stats"]["limit"] > 0
        assert stats["pids_stats"]["current"] == 3
        assert stats["name"] == "/busy"
        stream = c.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        assert second["precpu_stats"] == first["cpu_stats"]
        # Its own network namespace: eth0's counters, lo left out (docker's `networks`).
        assert set(stats["networks"]) == {"eth0"}
        assert stats["networks"]["eth0"]["tx_packets"] >= 0
    finally:
        c.remove(force=True)
    host = sdk.containers.run("busybox", ["sleep", "30"], detach=True, network_mode="host",
                              name="busy-host")
    try:
        assert "networks" not in host.stats(stream=False)   # the host's are not its own
    finally:
        host.remove(force=True)


def test_health_checks(daemon):
    sdk = daemon.client()
    ms = 1_000_000
    good = sdk.containers.run("busybox", ["sleep", "60"], detach=True, name="healthy-one",
                              healthcheck={"Test": ["CMD-SHELL", "echo fine"],
                                           "Interval": 200 * ms, "Retries": 2})
    bad = sdk.containers.run("busybox", ["sleep", "60"], detach=True, name="sick-one",
                             healthcheck={"Test": ["CMD", "false"], "Interval": 200 * ms,
                                          "Retries": 2})
    try:
        health = lambda c: sdk.containers.get(c.id).attrs["State"].get("Health") or {}  # noqa
        eventually(lambda: health(good).get("Status") == "healthy")
        eventually(lambda: health(bad).get("Status") == "unhealthy")
        assert health(good)["Log"][-1]["Output"] == "fine\n"
        assert health(bad)["FailingStreak"] >= 2 and health(bad)["Log"][-1]["ExitCode"] == 1
        names = [c.name for c in sdk.containers.list(filters={"health": "unhealthy"})]
        assert names == ["sick-one"]
        assert "(healthy)" in daemon.cli("ps", "--filter", "name=healthy-one").stdout.decode()
    finally:
        good.remove(force=True)
        bad.remove(force=True)


def test_no_healthcheck_flag_and_cli_flags(daemon):
    out = daemon.cli("run", "-d", "--name", "cli-health", "--health-cmd", "true",
                     "--health-interval", "200ms", "busybox", "sleep", "60")
    assert out.returncode == 0, out.stderr
    try:
        sdk = daemon.client()
        eventually(lambda: (sdk.containers.get("cli-health").attrs["State"].get("Health") or {})
                   .get("Status") == "healthy")
        check = sdk.containers.get("cli-health").attrs["Config"]["Healthcheck"]
        assert check["Test"] == ["CMD-SHELL", "true"] and check["Interval"] == 200_000_000
    finally:
        daemon.cli("rm", "-f", "cli-health")


def _peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_log_flood_of_1gb_keeps_memory_bounded(daemon, capsys):
    """1 GiB written as fast as the container can: the monitor and skiffd stay small."""
    sdk = daemon.client()
    monitor = daemon.monitor_pid()
    before = (_peak_kb(daemon.proc.pid), _peak_kb(monitor))
    flood = ("line=$(head -c 16383 /dev/zero | tr '\\0' x); "
             "yes \"$line\" | head -c 1073741824")
    started = time.monotonic()
    c = sdk.containers.run("busybox", ["sh", "-c", flood], detach=True, name="flood",
                           log_config={"Type": "json-file",
                                       "Config": {"max-size": "64m", "max-file": "2"}})
    try:
        assert c.wait(timeout=300)["StatusCode"] == 0
        took = time.monotonic() - started
        after = (_peak_kb(daemon.proc.pid), _peak_kb(monitor))
        with capsys.disabled():
            print(f"\n1 GiB log flood in {took:.1f} s ({1024 / took:.0f} MiB/s); peak RSS "
                  f"skiffd {after[0] // 1024} MiB (was {before[0] // 1024}), "
                  f"skiff-monitor {after[1] // 1024} MiB (was {before[1] // 1024})")
        assert after[1] - before[1] < 64 * 1024  # the monitor's peak grew by < 64 MiB
        assert after[0] - before[0] < 64 * 1024
        tail = c.logs(tail=1)
        assert tail.endswith(b"x\n") and len(tail) > 1000
    finally:
        c.remove(force=True)


def test_sizes_count_what_a_container_wrote(daemon):
    sdk = daemon.client()
    c = sdk.containers.run("busybox", ["sh", "-c", "head -c 300000 /dev/zero > /blob"],
                           detach=True, name="writer")
    try:
        c.wait()
        row = sdk.api.containers(all=True, size=True, filters={"name": "writer"})[0]
        assert 300000 <= row["SizeRw"] < 400000
        assert row["SizeRootFs"] > row["SizeRw"]
        inspected = sdk.api._result(sdk.api._get(sdk.api._url("/containers/{0}/json", c.id),
                                                 params={"size": 1}), True)
        assert inspected["SizeRw"] == row["SizeRw"]
        out = daemon.cli("ps", "-a", "-s", "--filter", "name=writer").stdout.decode()
        assert "SIZE" in out.splitlines()[0]
    finally:
        c.remove(force=True)


def test_image_events(daemon, test_images):
    sdk = daemon.client()
    since = time.time()
    with open(os.path.join(test_images, "busybox.tar"), "rb") as f:
        sdk.images.load(f.read())
    image = sdk.images.get("busybox")
    image.tag("evented-image", "v1")
    sdk.images.remove("evented-image:v1")
    until = time.time() + 0.2
    seen = [(e["Action"], e["Actor"]["Attributes"].get("name"))
            for e in sdk.events(since=since, until=until, decode=True,
                                filters={"type": "image"})]
    assert ("load", image.id) in seen          # docker names a loaded image by its id
    assert any(a == "tag" and "evented-image" in (n or "") for a, n in seen), seen
    assert any(a == "untag" for a, _ in seen), seen
    untag = next(e for e in sdk.events(since=since, until=until, decode=True,
                                       filters={"type": "image", "event": "untag"}))
    assert untag["Actor"]["ID"] == image.id
    tag_event = next(e for e in sdk.events(since=since, until=until, decode=True,
                                           filters={"type": "image", "event": "tag"}))
    assert tag_event["Actor"]["ID"] == image.id
