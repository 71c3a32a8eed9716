"""CLI smoke tests for restart, rename, stats, events, attach and container prune."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.root


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_lifecycle_commands(daemon):
    since = str(time.time())
    ok(daemon.cli("run", "-d", "--name", "cli-lc", "busybox", "sleep", "60"))
    try:
        ok(daemon.cli("rename", "cli-lc", "cli-lc2"))
        assert ok(daemon.cli("restart", "-t", "0", "cli-lc2")).strip() == "cli-lc2"
        table = ok(daemon.cli("stats", "--no-stream", "cli-lc2"))
        assert table.splitlines()[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
        assert "cli-lc2" in table
        events = ok(daemon.cli("events", "--since", since, "--until", str(time.time() + 0.2),
                               "--filter", "container=cli-lc2"))
        assert " container rename " in events and " container restart " in events
        ok(daemon.cli("create", "--name", "cli-dead", "busybox", "true"))
        pruned = ok(daemon.cli("container", "prune", "-f"))
        assert "Deleted Containers:" in pruned
        assert daemon.cli("inspect", "cli-dead").returncode != 0
        assert daemon.cli("inspect", "cli-lc2").returncode == 0
    finally:
        daemon.cli("rm", "-f", "cli-lc2")


def test_attach_streams_output_until_exit(daemon):
    # The container waits for the attach (a file appears in /tmp when told), since attach
    # streams only what is written after it: no race with a slow machine.
    ok(daemon.cli("run", "-d", "--name", "cli-att", "busybox", "sh", "-c",
                  "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo from-attach; exit 4"))
    try:
        import threading

        def release():
            sdk = daemon.client()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                events = [e for e in sdk.events(since=started, until=time.time(), decode=True,
                                                filters={"event": "attach",
                                                         "container": "cli-att"})]
                if events:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            sdk.containers.get("cli-att").exec_run(["touch", "/tmp/go"])

        started = time.time() - 1
        helper = threading.Thread(target=release, daemon=True)
        helper.start()
        result = daemon.cli("attach", "--no-stdin", "cli-att")
        helper.join(timeout=30)
        assert result.stdout == b"from-attach\n"
        assert result.returncode == 4
    finally:
        daemon.cli("rm", "-f", "cli-att")


def test_logs_details_show_the_attributes_log_options_ask_for(daemon):
    name = "cli-details"
    ok(daemon.cli("run", "--name", name, "--label", "app=web", "-e", "STAGE=prod",
                  "--log-opt", "labels=app", "--log-opt", "env=STAGE", "busybox",
                  "echo", "hello"))
    try:
        assert ok(daemon.cli("logs", "--details", name)) == "STAGE=prod,app=web hello\n"
        assert ok(daemon.cli("logs", name)) == "hello\n"
        info = daemon.client().api.inspect_container(name)
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"labels": "app", "env": "STAGE"}}
        bad = daemon.cli("run", "--log-opt", "nosuch=1", "busybox", "true")
        assert bad.returncode == 125 and b"unknown log opt 'nosuch'" in bad.stderr
    finally:
        daemon.cli("rm", "-f", name)
