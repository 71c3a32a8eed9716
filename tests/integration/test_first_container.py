"""The first container, end to end: skiff CLI -> skiffd -> monitor -> runtime -> kernel."""

from __future__ import annotations

import os
import re

import pytest

from tests.integration.conftest import cgroup_dirs_under, mounts_under

pytestmark = pytest.mark.root

DOCKER_DEFAULT_CAPS = 0x00000000a80425fb  # docker's 14 default capabilities


def run(daemon, *args, **kw):
    return daemon.cli("run", "--rm", *args, **kw)


def test_echo_hello(daemon):
    result = run(daemon, "busybox", "echo", "hello")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\n"


def test_exit_code_is_passed_on(daemon):
    assert run(daemon, "busybox", "sh", "-c", "exit 3").returncode == 3


def test_stdout_and_stderr_kept_apart(daemon):
    result = run(daemon, "busybox", "sh", "-c", "echo out; echo err >&2")
    assert result.stdout == b"out\n" and result.stderr == b"err\n"


def test_missing_command_exits_127(daemon):
    result = run(daemon, "busybox", "nosuchcmd")
    assert result.returncode == 127
    assert b'exec: "nosuchcmd": executable file not found in $PATH' in result.stderr


def test_pid_1_hostname_processes_and_network(daemon):
    script = ("echo pid=$$; hostname; ps -o comm > /tmp/ps; echo $(tail -n +2 /tmp/ps); "
              "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '")
    result = run(daemon, "--hostname", "boxy", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "pid=1"
    assert lines[1] == "boxy"
    assert sorted(lines[2].split()) == ["ps", "sh"]  # nothing of the host's
    # the default bridge network: its own eth0 beside lo, nothing of the host's
    assert sorted(line.strip() for line in lines[3:]) == ["eth0", "lo"]


def test_capabilities_seccomp_and_masked_paths(daemon):
    result = run(daemon, "busybox", "sh", "-c",
                 "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status; "
                 "cat /proc/kcore 2>/dev/null | wc -c; ls /proc/acpi 2>/dev/null | wc -l; "
                 "touch /proc/sysrq-trigger 2>/dev/null && echo writable || echo ro")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    caps = dict(re.findall(r"^(\w+):\s+(\S+)$", out, re.M))
    assert int(caps["CapEff"], 16) == DOCKER_DEFAULT_CAPS
    assert int(caps["CapBnd"], 16) == DOCKER_DEFAULT_CAPS
    assert caps["Seccomp"] == "2"
    tail = out.split()[-3:]
    assert tail[0] == "0"  # /proc/kcore reads as empty
    assert tail[1] == "0"
    assert tail[2] == "ro"


def test_rootfs_is_the_image_and_private(daemon):
    first = run(daemon, "busybox", "sh", "-c", "echo x > /only-here; ls /")
    assert first.returncode == 0, first.stderr
    listing = first.stdout.decode().split()
    for name in ("bin", "etc", "tmp", "only-here"):
        assert name in listing
    second = run(daemon, "busybox", "ls", "/only-here")
    assert second.returncode != 0


def test_user_env_workdir(daemon):
    result = run(daemon, "-u", "nobody", "-e", "FOO=bar", "-w", "/tmp", "busybox",
                 "sh", "-c", "id -u; echo $FOO; pwd")
    assert result.returncode == 0, result.stderr
    uid, foo, cwd = result.stdout.decode().split()
    assert uid != "0" and foo == "bar" and cwd == "/tmp"


def test_unknown_image_and_bad_reference(daemon):
    # --pull never: a missing image must not send the test to Docker Hub (no traffic leaves
    # this machine); pulls are tested against a registry of our own in test_registry*.py.
    result = run(daemon, "--pull", "never", "nosuchimage:1.0", "true")
    assert result.returncode == 125
    assert b"nosuchimage:1.0" in result.stderr
    bad = run(daemon, "--pull", "never", "Bad/Reference", "true")
    assert bad.returncode == 125
    assert b"invalid reference format" in bad.stderr


def test_corrupt_and_truncated_loads_leave_nothing(daemon, test_images, tmp_path):
    before = daemon.cli("images", "-q").stdout
    data = open(os.path.join(test_images, "busybox.tar"), "rb").read()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"not a tarball at all" * 100)
    for path in (truncated, garbage):
        result = daemon.cli("load", "-i", str(path))
        assert result.returncode != 0
        assert result.stderr.strip()
    assert daemon.cli("images", "-q").stdout == before


def test_no_leftovers_after_containers(daemon):
    assert run(daemon, "busybox", "true").returncode == 0
    assert run(daemon, "busybox", "nosuchcmd").returncode == 127
    client = daemon.client()
    assert client.containers.list(all=True) == []
    assert mounts_under(daemon.dir) == []
    active = os.path.join(daemon.root, "snapshots", "active")
    assert not os.path.isdir(active) or os.listdir(active) == []
    assert os.listdir(os.path.join(daemon.root, "containers")) == []
    leftover = [os.path.join(d, e) for d in cgroup_dirs_under(daemon.cgroup_parent)
                for e in os.listdir(d) if os.path.isdir(os.path.join(d, e))]
    assert leftover == []
    monitor = daemon.monitor_pid()
    children = open(f"/proc/{monitor}/task/{monitor}/children").read().split()
    assert children == []
