"""Security options for real: HostConfig -> skiff.engine.hostconfig -> skiff.runtime, checked
from inside the container (capabilities, --privileged, no-new-privileges, seccomp profiles,
read-only root with tmpfs, devices, groups, sysctls, namespace modes)."""

import json
import os
import signal

import pytest

from .test_resources import Box, block_device, world  # noqa: F401  (fixtures)
from .test_runtime_bundles import cgroup_leftovers, mounts_under

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]


@pytest.fixture
def box(world):  # noqa: F811
    yield Box(world)
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


def status(out: str) -> dict:
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def own_mask(field: str) -> str:
    with open("/proc/self/status") as f:
        return status(f.read())[field]


def test_cap_drop_all_and_add_one(box):
    code, out, _t, _k = box.run(["cat", "/proc/self/status"],
                                {"CapDrop": ["ALL"], "CapAdd": ["NET_RAW"]})
    st = status(out)
    assert st["CapEff"] == st["CapBnd"] == f"{1 << 13:016x}"
    code, out, _t, _k = box.run(["sh", "-c", "chown 1 /tmp && echo chowned"],
                                {"CapDrop": ["CHOWN"]})
    assert "chowned" not in out and "Operation not permitted" in out


def test_privileged_has_what_the_daemon_holds_and_nothing_more(box):
    script = ("grep -e Cap -e Seccomp /proc/self/status; "
              "mkdir /tmp/m && mount -t tmpfs t /tmp/m && echo mount-ok; "
              "grep ' /sys ' /proc/mounts; "
              "echo masked=$(grep -c -e ' /proc/keys ' -e ' /proc/sys ' /proc/self/mountinfo); "
              "ls /dev")
    code, out, _t, _k = box.run(["sh", "-c", script], {"Privileged": True})
    st = status(out)
    assert st["CapEff"] == st["CapBnd"] == own_mask("CapBnd")
    assert st["Seccomp"] == "0"
    assert "mount-ok" in out
    assert " /sys sysfs rw," in out
    assert "masked=0" in out   # neither masked nor read-only paths
    host_loops = [n for n in os.listdir("/dev") if n.startswith("loop")]
    assert all(n in out.split() for n in host_loops)


def test_no_new_privileges(box):
    code, out, _t, _k = box.run(["grep", "NoNewPrivs", "/proc/self/status"],
                                {"SecurityOpt": ["no-new-privileges"]})
    assert out.split() == ["NoNewPrivs:", "1"]
    code, out, _t, _k = box.run(["grep", "NoNewPrivs", "/proc/self/status"])
    assert out.split() == ["NoNewPrivs:", "0"]


def test_seccomp_profile_in_dockers_format(box):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 13},
                            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO",
                             "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    code, out, _t, _k = box.run(
        ["sh", "-c", "mkdir /tmp/d || echo refused; touch /tmp/f && echo touched; "
                     "grep Seccomp: /proc/self/status"],
        {"SecurityOpt": ["seccomp=" + json.dumps(profile)]})
    assert "refused" in out and "Permission denied" in out and "touched" in out
    assert "Seccomp:\t2" in out


def test_seccomp_unconfined(box):
    code, out, _t, _k = box.run(["grep", "Seccomp:", "/proc/self/status"],
                                {"SecurityOpt": ["seccomp=unconfined"]})
    assert out.split() == ["Seccomp:", "0"]


def test_readonly_root_with_tmpfs(box):
    code, out, _t, _k = box.run(
        ["sh", "-c", "touch /x 2>&1; touch /run/x && echo run-ok; grep ' /run ' /proc/mounts"],
        {"ReadonlyRootfs": True, "Tmpfs": {"/run": "size=1m"}})
    assert "Read-only file system" in out and "run-ok" in out
    line = [ln for ln in out.splitlines() if " /run " in ln][0]
    assert "tmpfs" in line and "noexec" in line and "size=1024k" in line


def test_device_with_permissions(box, block_device):  # noqa: F811
    device = [{"PathOnHost": block_device, "PathInContainer": "/dev/xdisk",
               "CgroupPermissions": "r"}]
    code, out, _t, _k = box.run(
        ["sh", "-c", "head -c 512 /dev/xdisk | wc -c; "
                     "echo x | dd of=/dev/xdisk 2>&1 || echo write-refused"],
        {"Devices": device})
    assert out.splitlines()[0] == "512", out
    assert "write-refused" in out and "Operation not permitted" in out


def test_group_add_and_sysctls(box):
    code, out, _t, _k = box.run(
        ["sh", "-c", "id -G; cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward"],
        {"GroupAdd": ["10", "4242"],
         "Sysctls": {"kernel.shmmax": "123456789", "net.ipv4.ip_forward": "1"}})
    lines = out.splitlines()
    assert lines[0].split() == ["0", "10", "4242"], out
    assert lines[1:] == ["123456789", "1"]


def test_host_namespaces(box):
    code, out, _t, _k = box.run(
        ["sh", "-c", "for k in ipc uts; do readlink /proc/self/ns/$k; done; hostname; "
                     f"[ -d /proc/{os.getpid()} ] && echo sees-host"],
        {"IpcMode": "host", "UTSMode": "host", "PidMode": "host"})
    lines = out.splitlines()
    assert lines[0] == os.readlink("/proc/self/ns/ipc")
    assert lines[1] == os.readlink("/proc/self/ns/uts")
    assert lines[2] == os.uname().nodename
    assert "sees-host" in out
    code, out, _t, _k = box.run(["sh", "-c", "readlink /proc/self/ns/ipc; hostname"])
    assert out.splitlines()[0] != os.readlink("/proc/self/ns/ipc")
    assert out.splitlines()[1] == "box"


def test_join_another_containers_namespaces(box):
    from skiff import runtime
    bundle, cid, _w = box.bundle(["sleep", "30"])
    pid = runtime.spawn(bundle, cid)

    class Record:
        state = {"Running": True, "Pid": pid}

    try:
        code, out, _t, _k = box.run(
            ["sh", "-c", "for k in pid ipc uts; do readlink /proc/self/ns/$k; done; "
                         "cat /proc/1/cmdline | tr '\\0' ' '"],
            {"PidMode": "container:sleeper", "IpcMode": "container:sleeper",
             "UTSMode": "container:sleeper"},
            lookup={"sleeper": Record()}.__getitem__)
        lines = out.splitlines()
        assert lines[:3] == [os.readlink(f"/proc/{pid}/ns/{k}") for k in ("pid", "ipc", "uts")]
        assert lines[3].strip() == "sleep 30"
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)


def test_init_reaps_orphans_and_passes_the_exit_status(box):
    script = ("echo pid=$$; (sleep 0.1 &); sleep 0.5; "
              "echo init=$(cat /proc/1/cmdline | tr '\\0' ' ')$(cat /proc/1/comm); "
              "echo zombies=$(grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l); "
              "echo ppid=$(sed -n 's/^PPid:.//p' /proc/$$/status); exit 3")
    code, out, _t, _k = box.run(["sh", "-c", script], {"Init": True})
    assert code == 3, out
    assert "pid=2" in out and "ppid=1" in out and "zombies=0" in out
    assert "init=init init" in out, out
    code, out, _t, _k = box.run(["sh", "-c", "kill -9 $$"], {"Init": True})
    assert code == 137
    code, out, _t, _k = box.run(["sh", "-c", "echo pid=$$"])
    assert "pid=1" in out


def test_init_forwards_signals(box):
    import select
    from skiff import runtime
    bundle, cid, _w = box.bundle(
        ["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; "
                     "while :; do sleep 0.05; done"], {"Init": True})
    r, w = os.pipe()
    pid = None
    try:
        try:
            pid = runtime.spawn(bundle, cid, stdio=(None, w, w))
        finally:
            os.close(w)
        assert select.select([r], [], [], 10)[0]
        assert os.read(r, 100).startswith(b"ready")
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        pid = None
        assert os.waitstatus_to_exitcode(status) == 7
        assert b"got-term" in os.read(r, 100)
    finally:
        os.close(r)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)
