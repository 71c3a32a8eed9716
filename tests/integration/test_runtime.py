"""skiff.runtime for real (root): busybox bundles, checked from inside the container."""

import os
import select
import shutil
import signal
import socket
import tempfile

import pytest

from skiff.errors import RuntimeFailure

from .test_runtime_bundles import (cgroup_leftovers, make_config, make_rootfs, mounts_under,
                              new_id, overlay_bundle, remove_cgroup_parent, scratch_dir,
                              write_bundle)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]

DOCKER_CAPS = "00000000a80425fb"


@pytest.fixture(scope="module")
def world():
    """A scratch dir, a busybox lower rootfs, and a parent cgroup for this module's
    containers; everything is removed (and checked gone) at the end."""
    from skiff.runtime import cgroups, host
    tmp = tempfile.mkdtemp(prefix="skiff-rt-", dir=scratch_dir())
    parent = f"skiff-rt-test-{os.getpid()}"
    parent_dirs = [d for _h, d in cgroups.paths(parent, "x", host.current())]
    try:
        lower = make_rootfs(os.path.join(tmp, "lower"))
        yield {"tmp": tmp, "lower": lower, "cgroup_parent": parent, "parent_dirs": parent_dirs}
    finally:
        remove_cgroup_parent(parent)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def box(world):
    made = []

    def bundle(args, *, overlay=True, **kw):
        cid = new_id()
        path = os.path.join(world["tmp"], cid)
        cg = f"{world['cgroup_parent']}/{cid}"
        if overlay:
            overlay_bundle(path, world["lower"], args, cg, **kw)
        else:
            spec = make_config(args, cg, root_path=world["lower"], **kw)
            write_bundle(path, spec)
        made.append((path, cid))
        return path, cid

    yield bundle
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


def edit_config(bundle, change):
    import json
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    change(spec)
    with open(path, "w") as f:
        json.dump(spec, f)


def run(bundle, cid, stdin=b""):
    """spawn, collect stdout+stderr, reap, clean up: (exit status, output)."""
    from skiff import runtime
    r, w = os.pipe()
    inr, inw = os.pipe()
    pid = None
    try:
        try:
            pid = runtime.spawn(bundle, cid, stdio=(inr, w, w))
        finally:
            os.close(w)
            os.close(inr)
        os.write(inw, stdin)
        os.close(inw)
        inw = None
        out = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        pid = None
        return os.waitstatus_to_exitcode(status), out.decode()
    finally:
        os.close(r)
        if inw is not None:
            os.close(inw)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)


def assert_no_children():
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_pid1_hostname_loopback_caps_and_seccomp(box):
    bundle, cid = box(["sh", "-c", "echo pid=$$; hostname; cat /proc/net/dev; "
                                   "cat /proc/self/status; cat /proc/self/cgroup"])
    code, out = run(bundle, cid)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    assert lines[1] == "box"
    ifaces = [ln.split(":")[0].strip() for ln in lines[4:] if ":" in ln and
              not ln.startswith(("Name", "Cap", "Seccomp", "NoNew")) and ln.split(":")[0].strip()
              in ("lo", "eth0", "ens3", "ens4", "enp0s3", "docker0")]
    assert ifaces == ["lo"]
    status = dict(ln.split(":\t", 1) for ln in lines if ":\t" in ln)
    assert status["CapEff"] == DOCKER_CAPS
    assert status["CapPrm"] == DOCKER_CAPS
    assert status["CapBnd"] == DOCKER_CAPS
    assert status["CapInh"] == "0000000000000000"
    assert status["CapAmb"] == "0000000000000000"
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "0"
    # cgroup namespace: the container's own cgroup is its root
    assert all(ln.endswith(":/") for ln in lines if ln[:1].isdigit() and ln.count(":") >= 2)


def test_exit_code_propagates_and_nothing_is_left(box):
    bundle, cid = box(["sh", "-c", "exit 7"])
    assert run(bundle, cid) == (7, "")
    assert_no_children()


def test_killed_from_outside(box):
    from skiff import runtime
    bundle, cid = box(["sleep", "30"])
    pid = runtime.spawn(bundle, cid)
    try:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == -9
    finally:
        runtime.cleanup(bundle, cid)


@pytest.mark.parametrize("args, code, message", [
    (["nosuchcmd"], 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
    (["/nosuch"], 127, 'exec: "/nosuch": stat /nosuch: no such file or directory'),
    (["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
    (["/bin"], 126, 'exec: "/bin": is a directory'),
])
def test_exec_errors_have_dockers_words_and_codes(box, world, args, code, message):
    from skiff import runtime
    bundle, cid = box(args)
    with pytest.raises(RuntimeFailure) as info:
        runtime.spawn(bundle, cid)
    assert (info.value.message, info.value.exit_code) == (message, code)
    assert_no_children()
    assert not any(os.path.exists(os.path.join(d, cid)) for d in world["parent_dirs"])


def test_setup_failure_names_the_step_with_125(box):
    from skiff import runtime
    bundle, cid = box(["true"])
    edit_config(bundle, lambda s: s["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]))
    with pytest.raises(RuntimeFailure) as info:
        runtime.spawn(bundle, cid)
    assert info.value.exit_code == 125
    assert "RLIMIT_NOFILE" in info.value.message and "hard limit" in info.value.message
    bundle, cid = box(["true"])
    edit_config(bundle, lambda s: s["process"].update(cwd="/no/such/dir"))
    with pytest.raises(RuntimeFailure, match=r'chdir to cwd \("/no/such/dir"\)'):
        runtime.spawn(bundle, cid)
    assert_no_children()


def test_masked_and_readonly_paths(box):
    bundle, cid = box(["sh", "-c",
                       "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); "
                       "echo keys=$(cat /proc/keys | wc -c); ls /sys/firmware | wc -l; "
                       "echo 1 > /proc/sys/kernel/domainname && echo sys-writable; "
                       "echo 1 > /proc/sysrq-trigger && echo sysrq-writable; "
                       "grep -c -w -e /proc/kcore -e /proc/keys /proc/self/mountinfo"])
    code, out = run(bundle, cid)
    lines = out.splitlines()
    assert "kcore=0" in lines and "keys=0" in lines
    assert "sys-writable" not in out and "sysrq-writable" not in out
    assert "Read-only file system" in out


def test_seccomp_and_caps_block_what_docker_blocks(box):
    bundle, cid = box(["sh", "-c",
                       "unshare -n true && echo unshare-ok; "
                       "mount -t tmpfs t /mnt && echo mount-ok; "
                       "mknod /tmp/sda b 8 0 && (head -c1 /tmp/sda >/dev/null && echo read-ok); "
                       "mknod /tmp/kmsg c 1 11 && echo mknod-ok; "
                       "(exec 3>/tmp/kmsg) && echo kmsg-open; "
                       "echo end"])
    code, out = run(bundle, cid)
    assert "end" in out
    assert "unshare-ok" not in out and "mount-ok" not in out and "read-ok" not in out
    # the device cgroup (v1 file, v2 BPF program) lets mknod through but not the use
    assert "mknod-ok" in out and "kmsg-open" not in out


def test_overlay_rootfs_is_private_to_each_container(box, world):
    b1, c1 = box(["sh", "-c", "echo secret > /written && cat /written"])
    assert run(b1, c1) == (0, "secret\n")
    b2, c2 = box(["sh", "-c", "cat /written 2>&1 || echo absent"])
    code, out = run(b2, c2)
    assert "absent" in out
    assert not os.path.exists(os.path.join(world["lower"], "written"))
    assert open(os.path.join(b1, "upper", "written")).read() == "secret\n"


def test_user_groups_and_readonly_root(box):
    bundle, cid = box(["sh", "-c", "id; grep Cap /proc/self/status; touch /x || echo ro"])
    edit_config(bundle, lambda s: (s["process"].update(
        user={"uid": 65534, "gid": 65534, "additionalGids": [5]}), s["root"].update(
        readonly=True)))
    code, out = run(bundle, cid)
    assert "uid=65534(nobody) gid=65534(nogroup) groups=5(tty)" in out
    assert "CapEff:\t0000000000000000" in out
    assert f"CapBnd:\t{DOCKER_CAPS}" in out
    assert out.rstrip().endswith("ro")


def test_cgroup_limits_are_applied(box):
    from skiff.runtime import host
    if host.current().cgroup_v2:
        files = "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max"
    else:
        files = "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"
    bundle, cid = box(["sh", "-c", f"cat {files}"])
    edit_config(bundle, lambda s: s["linux"]["resources"].update(
        memory={"limit": 64 << 20}, pids={"limit": 50}))
    code, out = run(bundle, cid)
    assert out.split() == [str(64 << 20), "50"]


def test_terminal_over_console_socket(box):
    from skiff import runtime
    bundle, cid = box(["sh", "-c", "tty; [ -t 0 ] && echo stdin-tty; stty size; echo done"],
                      terminal=True)
    edit_config(bundle, lambda s: s["process"].update(consoleSize={"height": 33, "width": 101}))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = master = None
    try:
        pid = runtime.spawn(bundle, cid, console_socket=theirs.fileno())
        theirs.close()
        msg, fds, _f, _a = socket.recv_fds(ours, 1024, 1, socket.MSG_DONTWAIT)
        master = fds[0]
        out = b""
        while select.select([master], [], [], 5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        pid = None
        text = out.decode().replace("\r", "")
        assert text.splitlines()[0] == "/dev/pts/0"
        assert "stdin-tty" in text and "33 101" in text and "done" in text
        assert msg.startswith(b"/dev/pts/")
    finally:
        theirs.close()
        ours.close()
        if master is not None:
            os.close(master)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)


def test_plain_rootfs_without_annotation(box, world):
    bundle, cid = box(["sh", "-c", "cat /etc/passwd | head -1"], overlay=False)
    edit_config(bundle, lambda s: s["root"].update(readonly=True))
    assert run(bundle, cid) == (0, "root:x:0:0:root:/root:/bin/sh\n")


def test_wait_start_and_start(box, world):
    from skiff import runtime
    from skiff.runtime import state
    bundle, cid = box(["sh", "-c", "echo started"])
    root = os.path.join(world["tmp"], "state")
    r, w = os.pipe()
    pid = None
    try:
        pid = runtime.spawn(bundle, cid, stdio=(None, w, w), state_root=root, wait_start=True)
        os.close(w)
        w = None
        assert state.status(root, state.read(root, cid)) == "created"
        assert not select.select([r], [], [], 0.05)[0]
        runtime.start(cid, root)
        assert os.read(r, 100) == b"started\n"
        _, status = os.waitpid(pid, 0)
        pid = None
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid, state_root=root)
    assert not os.path.exists(os.path.join(root, cid))


def test_joining_another_containers_pid_and_network_namespaces(box):
    from skiff import runtime
    first, c1 = box(["sleep", "30"])
    pid1 = runtime.spawn(first, c1)
    try:
        second, c2 = box(["sh", "-c", "echo pid=$$; ps -o comm | sort | tr '\\n' ' '; echo; "
                                      "readlink /proc/self/ns/net"], hostname="")
        edit_config(second, lambda s: s["linux"].update(namespaces=[
            {"type": "mount"}, {"type": "ipc"}, {"type": "cgroup"},
            {"type": "pid", "path": f"/proc/{pid1}/ns/pid"},
            {"type": "network", "path": f"/proc/{pid1}/ns/net"}]))
        code, out = run(second, c2)
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0] != "pid=1"
        assert "sleep" in lines[1].split()
        assert lines[2] == os.readlink(f"/proc/{pid1}/ns/net")
    finally:
        os.kill(pid1, signal.SIGKILL)
        os.waitpid(pid1, 0)
        runtime.cleanup(first, c1)
    assert_no_children()


def test_preserved_descriptors_and_no_others(box):
    from skiff import runtime
    bundle, cid = box(["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; cat <&3"])
    extra_r, extra_w = os.pipe()
    leak_r, leak_w = os.pipe()
    os.write(extra_w, b"through-fd-3")
    os.close(extra_w)
    os.set_inheritable(leak_r, True)  # inheritable, yet not for the container
    try:
        saved = os.dup(3)
    except OSError:
        saved = None
    try:
        os.dup2(extra_r, 3)
        r, w = os.pipe()
        pid = runtime.spawn(bundle, cid, stdio=(None, w, w), preserve_fds=1)
        os.close(w)
        out = b""
        while chunk := os.read(r, 4096):
            out += chunk
        os.close(r)
        os.waitpid(pid, 0)
    finally:
        if saved is not None:
            os.dup2(saved, 3)
            os.close(saved)
        else:
            os.close(3)
        for fd in (extra_r, leak_r, leak_w):
            os.close(fd)
        runtime.cleanup(bundle, cid)
    fds, _, rest = out.decode().partition(" 3 ")
    assert fds.split() == ["0", "1", "2"]
    assert rest.split()[0] == "4" and len(rest.split()) == 2  # 4: ls's own directory fd
    assert out.decode().endswith("through-fd-3")


def test_cap_add_sys_admin_lets_mount_through_the_default_filter(box):
    bundle, cid = box(["sh", "-c", "mkdir -p /mnt && mount -t tmpfs t /mnt && echo mount-ok; "
                                   "grep Seccomp: /proc/self/status"])

    def add_sys_admin(spec):
        for kind in ("bounding", "effective", "permitted"):
            spec["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")
    edit_config(bundle, add_sys_admin)
    code, out = run(bundle, cid)
    assert "mount-ok" in out and "Seccomp:\t2" in out
