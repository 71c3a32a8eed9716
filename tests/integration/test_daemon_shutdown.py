"""`live-restore`: kept on (skiff's default) containers outlive a daemon stop; turned off,
SIGTERM stops them as dockerd does, and restart policies bring them back at the next start."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.root


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pid(daemon, name: str) -> int:
    return daemon.client().api.inspect_container(name)["State"]["Pid"]


def test_live_restore_off_stops_containers_at_shutdown(daemon):
    daemon.stop()
    daemon.extra_args = ["--live-restore=false", "--shutdown-timeout", "5"]
    daemon.start()
    ok(daemon.cli("run", "-d", "--name", "sd-always", "--restart", "always", "busybox",
                  "sleep", "300"))
    ok(daemon.cli("run", "-d", "--name", "sd-none", "busybox", "sh", "-c",
                  "trap 'exit 143' TERM; while :; do sleep 0.1; done"))
    # A container that ignores SIGTERM is killed once the timeout is over.
    ok(daemon.cli("run", "-d", "--name", "sd-stubborn", "--stop-timeout", "1", "busybox",
                  "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"))
    pids = {name: _pid(daemon, name) for name in ("sd-always", "sd-none", "sd-stubborn")}
    started = time.monotonic()
    daemon.stop()
    assert time.monotonic() - started < 15
    for name, pid in pids.items():
        assert not _alive(pid), f"{name} still runs after the daemon stopped"

    daemon.extra_args = []
    daemon.start()
    sdk = daemon.client()
    deadline = time.monotonic() + 20
    while sdk.api.inspect_container("sd-always")["State"]["Status"] != "running":
        assert time.monotonic() < deadline, "the always container did not come back"
        time.sleep(0.1)
    none = sdk.api.inspect_container("sd-none")["State"]
    assert none["Status"] == "exited" and none["ExitCode"] == 143
    stubborn = sdk.api.inspect_container("sd-stubborn")["State"]
    assert stubborn["Status"] == "exited" and stubborn["ExitCode"] == 137
    for name in pids:
        daemon.cli("rm", "-f", name)


def test_live_restore_on_keeps_containers_running(daemon):
    ok(daemon.cli("run", "-d", "--name", "sd-kept", "busybox", "sleep", "300"))
    pid = _pid(daemon, "sd-kept")
    daemon.stop()
    try:
        assert _alive(pid)
    finally:
        daemon.start()
    assert daemon.client().api.inspect_container("sd-kept")["State"]["Pid"] == pid
    daemon.cli("rm", "-f", "sd-kept")
