"""Isolation proven: what a default container cannot do, and that --privileged can (where
doing it is harmless to the host). Each case runs the same command both ways, so that a
refusal is shown to come from the container's confinement and not from the command."""

import os

import pytest

from .test_resources import Box, world  # noqa: F401  (fixtures)
from .test_runtime_bundles import cgroup_leftovers, mounts_under

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]

PRIVILEGED = {"Privileged": True}


@pytest.fixture
def box(world):  # noqa: F811
    yield Box(world)
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


def both(box, script, host_config=None):
    _c, default, _t, _k = box.run(["sh", "-c", script], host_config)
    _c, privileged, _t, _k = box.run(["sh", "-c", script], dict(host_config or {},
                                                                Privileged=True))
    return default, privileged


def test_cannot_mount(box):
    default, privileged = both(box, "mkdir /tmp/m; mount -t tmpfs t /tmp/m && echo MOUNTED")
    assert "MOUNTED" not in default and "permission denied" in default
    assert "MOUNTED" in privileged


def test_cannot_load_kernel_modules(box):
    # a file that is not a module: init_module is refused (EPERM) unless the caller may
    # load modules; only then does the kernel look at the file (and refuse it otherwise)
    script = "printf 'not an ELF module' > /tmp/x.ko; insmod /tmp/x.ko; echo rc=$?"
    default, privileged = both(box, script)
    assert "Operation not permitted" in default and "rc=0" not in default
    # this far the kernel looks at the file (this host's kernel then refuses any module)
    assert "Operation not permitted" not in privileged and "rc=0" not in privileged


def test_cannot_set_the_clock(box):
    # privileged would really move the host's clock: only the refusal is run
    import time
    _c, out, _t, _k = box.run(["date", "-s", "2001-01-01"])
    assert "can't set date: Operation not permitted" in out
    assert time.gmtime().tm_year > 2001


def test_cannot_reboot(box):
    # reboot(2) in a PID namespace other than the host's ends that namespace's init (with
    # SIGHUP for a restart) when the caller may reboot; the host is never rebooted
    code, out, _t, _k = box.run(["reboot", "-f"])
    assert code == 1 and "Operation not permitted" in out, (code, out)
    code, out, _t, _k = box.run(["reboot", "-f"], PRIVILEGED)
    assert code == 128 + 1, (code, out)


def test_cannot_trace_processes_outside(box):
    # with the host's PID namespace the test process is visible, but its memory and
    # environment are protected by ptrace access checks
    me = os.getpid()
    script = f"head -c 1 /proc/{me}/environ >/dev/null && echo READ; ls -d /proc/{me}"
    default, privileged = both(box, script, {"PidMode": "host"})
    assert f"/proc/{me}" in default and "READ" not in default
    assert "Permission denied" in default
    assert "READ" in privileged


def test_cannot_write_proc_sys_or_sys(box):
    script = ("echo 1 > /proc/sys/kernel/shm_rmid_forced && echo PROC-SYS; "
              "grep -e ' /sys ' -e ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f5,6")
    default, privileged = both(box, script)
    assert "PROC-SYS" not in default and "Read-only file system" in default
    assert "/sys ro," in default and "/proc/sys ro," in default
    assert "/sys rw," in privileged and "/proc/sys" not in privileged.split("PROC-SYS")[-1]


def test_cannot_use_devices_it_creates(box):
    # /dev/fuse (10:229): any process may open it where the device cgroup lets it
    script = ("mknod /tmp/fuse c 10 229 && echo made; "
              "(exec 3</tmp/fuse) && echo OPENED")
    default, privileged = both(box, script)
    assert "made" in default and "OPENED" not in default
    assert "Operation not permitted" in default
    assert "OPENED" in privileged


def test_sees_no_host_processes_mounts_or_interfaces(box):
    _c, out, _t, _k = box.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'; "
                                           "cut -d' ' -f2 /proc/mounts; "
                                           "ls /sys/class/net"])
    lines = out.splitlines()
    assert int(lines[0]) <= 3   # sh and its two children
    assert not any(m.startswith(("/work", "/home", "/boot", "/var")) for m in lines[1:])
    assert lines[-1] == "lo"


def test_masked_paths_are_hidden(box):
    default, privileged = both(box, "wc -c < /proc/keys; wc -c < /proc/timer_list")
    assert default.split() == ["0", "0"]
    assert all(int(n) > 0 for n in privileged.split()), privileged
