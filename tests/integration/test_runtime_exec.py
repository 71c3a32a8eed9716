"""skiff.runtime.exec_process for real (root): a process joins a running busybox container."""

import os
import signal
import socket

import pytest

from skiff.errors import RuntimeFailure

from .test_runtime import box, edit_config, world  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]


@pytest.fixture
def running(box):  # noqa: F811
    """A container running `sleep`: (bundle, id, init pid); killed and cleaned up after."""
    from skiff import runtime
    started = []

    def make(**kw):
        bundle, cid = box(["sleep", "1000"], **kw)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            pid = runtime.spawn(bundle, cid, stdio=(null, null, null))
        finally:
            os.close(null)
        started.append((bundle, cid, pid))
        return bundle, cid, pid

    yield make
    for bundle, cid, pid in started:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        runtime.cleanup(bundle, cid)


def exec_run(bundle, cid, init, process, stdin=b""):
    from skiff.runtime.exec import exec_process
    r, w = os.pipe()
    inr, inw = os.pipe()
    try:
        pid = exec_process(bundle, cid, init, process, stdio=(inr, w, w))
    finally:
        os.close(w)
        os.close(inr)
    os.write(inw, stdin)
    os.close(inw)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


def status_of(text):
    return dict(ln.split(":\t", 1) for ln in text.splitlines() if ":\t" in ln)


def test_exec_joins_namespaces_cgroups_with_the_init_privileges(running):
    bundle, cid, init = running()
    code, out = exec_run(bundle, cid, init, {"args": ["sh", "-c",
                                                      "hostname; cat /proc/1/cmdline; echo; "
                                                      "ls /proc | grep '^[0-9]' | tr '\\n' ' '; echo; "
                                                      "cat /proc/self/status"]})
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "box"
    assert lines[1].replace("\0", " ").strip() == "sleep 1000"
    pids = sorted(int(x) for x in lines[2].split())
    assert pids[0] == 1 and len(pids) <= 6 and max(pids) < 20  # no host processes
    mine, theirs = status_of(out), status_of(open(f"/proc/{init}/status").read())
    for key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "Seccomp", "NoNewPrivs"):
        assert mine[key] == theirs[key], key
    assert mine["Seccomp"] == "2"
    assert open(f"/proc/{init}/cgroup").read() == _cgroup_of_exec(bundle, cid, init)


def _cgroup_of_exec(bundle, cid, init):
    from skiff.runtime.exec import exec_process
    null = os.open(os.devnull, os.O_RDWR)
    pid = exec_process(bundle, cid, init, {"args": ["sleep", "5"]}, stdio=(null, null, null))
    os.close(null)
    try:
        return open(f"/proc/{pid}/cgroup").read()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_exec_env_cwd_user_stdin_and_exit_codes(running):
    bundle, cid, init = running()
    code, out = exec_run(bundle, cid, init, {
        "args": ["sh", "-c", "echo $FOO; pwd; id -u; cat; exit 3"], "env": ["FOO=bar",
                                                                           "PATH=/bin"],
        "cwd": "/tmp", "user": {"uid": 1000, "gid": 1000}}, stdin=b"typed\n")
    assert code == 3
    assert out.splitlines() == ["bar", "/tmp", "1000", "typed"]
    with pytest.raises(RuntimeFailure) as info:
        exec_run(bundle, cid, init, {"args": ["nosuch"]})
    assert info.value.exit_code == 127
    assert info.value.message == (
        'OCI runtime exec failed: exec failed: unable to start container process: exec: '
        '"nosuch": executable file not found in $PATH: unknown')
    with pytest.raises(RuntimeFailure) as info:
        exec_run(bundle, cid, init, {"args": ["/etc/passwd"]})
    assert info.value.exit_code == 126
    for _ in range(20):  # a failed exec leaves no zombie behind (only the init is our child)
        with pytest.raises(RuntimeFailure):
            exec_run(bundle, cid, init, {"args": ["nosuch"]})
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)


def test_exec_with_a_terminal_sends_the_master(running):
    from skiff.runtime.exec import exec_process
    from skiff.linux.tty import recv_fd
    bundle, cid, init = running()
    ours, theirs = socket.socketpair()
    try:
        pid = exec_process(bundle, cid, init, {"args": ["sh", "-c", "tty; stty size"],
                                               "terminal": True,
                                               "consoleSize": {"height": 30, "width": 90}},
                           console_socket=theirs.fileno())
        master, _name = recv_fd(ours)
    finally:
        theirs.close()
        ours.close()
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.decode().split() == ["/dev/pts/0", "30", "90"]
