"""exec, top, pause and unpause on real containers, through skiffd: the skiff CLI, the docker
CLI and the Docker SDK."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def ctr(daemon):
    """One long-running container for the module (exec is cheap; containers are not)."""
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "trap 'exit 0' TERM; "
                                          "while true; do sleep 1; done"],
                              detach=True, environment={"FROM_RUN": "yes"},
                              working_dir="/tmp", hostname="exechost")
    try:
        yield c
    finally:
        c.remove(force=True)


def status_fields(text: str) -> dict:
    return dict(ln.split(":\t", 1) for ln in text.splitlines() if ":\t" in ln)


def test_exec_joins_the_container(daemon, ctr):
    r = daemon.cli("exec", ctr.id, "sh", "-c", "id; hostname; cat /proc/1/cmdline; echo; "
                   "ls /proc | grep '^[0-9]' | tr '\\n' ' '; echo; echo $FROM_RUN; pwd")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1] == "exechost"
    assert lines[2].replace("\0", " ").startswith("sh -c trap")
    pids = [int(p) for p in lines[3].split()]
    assert min(pids) == 1 and max(pids) < 100 and len(pids) < 10  # no host processes
    assert lines[4:] == ["yes", "/tmp"]


def test_exec_env_cwd_user(daemon, ctr):
    r = daemon.cli("exec", "-e", "FOO=bar", "-e", "FROM_RUN=over", "-w", "/etc", "-u",
                   "nobody", ctr.id, "sh", "-c", "echo $FOO $FROM_RUN; pwd; id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["bar", "over", "/etc", "65534", "65534"]
    r = daemon.cli("exec", "-u", "1000:1001", ctr.id, "id")
    assert r.stdout.decode().startswith("uid=1000 gid=1001"), r.stdout


def test_exec_exit_codes(daemon, ctr):
    assert daemon.cli("exec", ctr.id, "true").returncode == 0
    assert daemon.cli("exec", ctr.id, "sh", "-c", "exit 3").returncode == 3
    r = daemon.cli("exec", ctr.id, "nosuch")
    assert r.returncode == 127
    assert (b'OCI runtime exec failed: exec failed: unable to start container process: exec: '
            b'"nosuch": executable file not found in $PATH: unknown') in r.stdout + r.stderr
    assert daemon.cli("exec", ctr.id, "/etc/passwd").returncode == 126
    r = daemon.cli("exec", "-w", "/nonexistent", ctr.id, "true")
    assert r.returncode != 0 and b"chdir to cwd" in r.stdout + r.stderr


def test_exec_stdin_and_detach(daemon, ctr):
    r = daemon.cli("exec", "-i", ctr.id, "sh", "-c", "tr a-z A-Z; echo done >&2",
                   input=b"hello exec\n")
    assert r.returncode == 0
    assert r.stdout == b"HELLO EXEC\n"
    assert r.stderr == b"done\n"
    r = daemon.cli("exec", "-d", ctr.id, "sh", "-c", "echo detached > /tmp/marker")
    assert r.returncode == 0 and r.stdout == b""
    for _ in range(100):
        if daemon.cli("exec", ctr.id, "cat", "/tmp/marker").stdout == b"detached\n":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the detached exec did not run")


def test_exec_privileges_match_the_container(daemon, ctr):
    pid = daemon.client().api.inspect_container(ctr.id)["State"]["Pid"]
    init = status_fields(open(f"/proc/{pid}/status").read())
    r = daemon.cli("exec", ctr.id, "cat", "/proc/self/status")
    mine = status_fields(r.stdout.decode())
    for key in ("CapEff", "CapPrm", "CapBnd", "Seccomp", "NoNewPrivs"):
        assert mine[key] == init[key], key
    assert mine["Seccomp"] == "2"
    r = daemon.cli("exec", "--privileged", ctr.id, "cat", "/proc/self/status")
    privileged = status_fields(r.stdout.decode())
    assert int(privileged["CapEff"], 16) > int(init["CapEff"], 16)
    assert privileged["CapEff"] == status_fields(open("/proc/self/status").read())["CapBnd"]
    assert privileged["Seccomp"] == "2"  # the container's filter still applies


def test_exec_errors(daemon):
    client = daemon.client()
    stopped = client.containers.create("busybox", ["true"])
    try:
        r = daemon.cli("exec", stopped.id, "true")
        assert r.returncode == 1
        assert f"Container {stopped.id} is not running".encode() in r.stderr
    finally:
        stopped.remove(force=True)
    r = daemon.cli("exec", "nosuchcontainer", "true")
    assert r.returncode == 1 and b"No such container: nosuchcontainer" in r.stderr


def test_exec_tty_through_a_pty(daemon, ctr):
    pexpect = pytest.importorskip("pexpect")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"), TERM="xterm")
    child = pexpect.spawn(sys.executable, ["-m", "skiff.cli.main", "-H", daemon.host, "exec",
                                           "-it", ctr.id, "sh"],
                          env=env, dimensions=(33, 101), timeout=20)
    try:
        child.expect(r"[#$] ")
        child.sendline("tty; stty size; echo $TERM; echo $((6*7))")
        child.expect(r"/dev/pts/\d+")
        child.expect(r"33 101")
        child.expect(r"xterm")
        child.expect(r"42")
        child.expect(r"[#$] ")
        child.setwinsize(40, 120)
        child.sendline("stty size")
        child.expect(r"40 120")
        child.expect(r"[#$] ")
        child.sendline("exit 5")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 5


def test_docker_sdk_exec_run(daemon, ctr):
    c = daemon.client().containers.get(ctr.id)
    result = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert result.exit_code == 4
    assert b"out" in result.output and b"err" in result.output
    result = c.exec_run("hostname", environment={"X": "1"})
    assert (result.exit_code, result.output) == (0, b"exechost\n")
    out, err = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True).output
    assert (out, err) == (b"o\n", b"e\n")
    exec_id = daemon.client().api.exec_create(ctr.id, ["true"])["Id"]
    assert len(exec_id) == 64
    assert exec_id in daemon.client().api.inspect_container(ctr.id)["ExecIDs"]
    daemon.client().api.exec_start(exec_id)
    info = daemon.client().api.exec_inspect(exec_id)
    assert info["ExitCode"] == 0 and info["Running"] is False
    assert info["ContainerID"] == ctr.id and info["ProcessConfig"]["entrypoint"] == "true"


@pytest.mark.needs_docker
def test_docker_cli_exec(daemon, ctr):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)

    def run(*args, input=None):
        return subprocess.run([docker, *args], env=env, capture_output=True, input=input,
                              timeout=60)

    r = run("exec", ctr.id, "sh", "-c", "echo hi; hostname; exit 3")
    assert (r.returncode, r.stdout) == (3, b"hi\nexechost\n"), r.stderr
    r = run("exec", "-i", "-e", "A=b", ctr.id, "sh", "-c", "cat; echo $A", input=b"in\n")
    assert (r.returncode, r.stdout) == (0, b"in\nb\n"), r.stderr
    r = run("exec", ctr.id, "nosuch")
    assert r.returncode == 127, r
    assert b"executable file not found in $PATH" in r.stdout + r.stderr
    assert run("exec", "-d", ctr.id, "sleep", "1").returncode == 0
    r = run("top", ctr.id)
    assert r.returncode == 0 and b"PID" in r.stdout, r.stderr


def test_top(daemon, ctr):
    client = daemon.client()
    top = client.api.top(ctr.id)
    assert top["Titles"][:2] == ["UID", "PID"]
    commands = [p[-1] for p in top["Processes"]]
    assert any(c.startswith("sh -c trap") for c in commands), commands
    assert all(int(p[1]) != os.getpid() for p in top["Processes"])
    top = client.api.top(ctr.id, ps_args="-o pid,comm")
    assert top["Titles"] == ["PID", "COMMAND"]
    assert {p[1] for p in top["Processes"]} <= {"sh", "sleep"}
    r = daemon.cli("top", ctr.id)
    assert r.returncode == 0 and r.stdout.decode().split()[:2] == ["UID", "PID"]


def test_pause_and_unpause(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "i=0; while true; do i=$((i+1)); "
                                          "echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; usleep 10000; done"],
                              detach=True)
    try:
        time.sleep(0.2)
        r = daemon.cli("pause", c.id)
        assert r.returncode == 0, r.stderr
        state = client.api.inspect_container(c.id)["State"]
        assert (state["Status"], state["Paused"], state["Running"]) == ("paused", True, True)
        frozen = open(f"/proc/{state['Pid']}/status").read()
        assert "State:\tD" in frozen or "State:\tS" in frozen or "State:\tT" in frozen
        before = _read_counter(state["Pid"])
        time.sleep(0.3)
        assert _read_counter(state["Pid"]) == before  # no progress while paused
        r = daemon.cli("pause", c.id)
        assert r.returncode == 1 and f"Container {c.id} is already paused".encode() in r.stderr
        r = daemon.cli("exec", c.id, "true")
        assert r.returncode == 1 and b"is paused" in r.stderr
        assert daemon.cli("unpause", c.id).returncode == 0
        state = client.api.inspect_container(c.id)["State"]
        assert (state["Status"], state["Paused"]) == ("running", False)
        first = _read_counter(state["Pid"])
        time.sleep(0.3)
        assert _read_counter(state["Pid"]) > first  # it runs again
        assert c.exec_run("true").exit_code == 0
        r = daemon.cli("unpause", c.id)
        assert r.returncode == 1 and f"Container {c.id} is not paused".encode() in r.stderr
    finally:
        c.remove(force=True)


def _read_counter(pid: int) -> int:
    """The counter file, read from the host through the init's root (exec would block)."""
    with open(f"/proc/{pid}/root/tmp/n") as f:
        return int(f.read() or 0)


def test_a_paused_container_can_be_killed_and_removed(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sleep", "1000"], detach=True)
    try:
        c.pause()
        c.kill()  # SIGKILL: the container is thawed so that it dies
        assert c.wait(timeout=20)["StatusCode"] == 137
        state = client.api.inspect_container(c.id)["State"]
        assert (state["Status"], state["Paused"], state["Running"]) == ("exited", False, False)
        r = daemon.cli("unpause", c.id)
        assert r.returncode == 1 and f"Container {c.id} is not paused".encode() in r.stderr
        r = daemon.cli("pause", c.id)
        assert r.returncode == 1 and f"Container {c.id} is not running".encode() in r.stderr
    finally:
        c.remove(force=True)
    c = client.containers.run("busybox", ["sleep", "1000"], detach=True)
    c.pause()
    c.remove(force=True)  # does not hang on the frozen init
    assert c.id not in [x.id for x in client.containers.list(all=True)]


def test_exec_output_is_complete_and_not_logged(daemon, ctr):
    r = daemon.cli("exec", ctr.id, "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; "
                   "echo; echo marker-not-in-logs")
    assert r.returncode == 0
    assert r.stdout.count(b"x") == 3000000 and r.stdout.endswith(b"marker-not-in-logs\n")
    assert b"marker-not-in-logs" not in daemon.client().containers.get(ctr.id).logs()


# -- skiff's one-round-trip exec (POST /skiff/containers/{id}/exec) --------------------------


def skiff_exec(daemon, ref: str, body: dict, stdin: bytes = b""):
    """skiff's endpoint over a raw socket: (status, headers, frames until the end)."""
    import json
    import socket

    from skiff.wire.framing import FrameDecoder

    payload = json.dumps(body).encode()
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(daemon.sock)
    try:
        sock.sendall(f"POST /skiff/containers/{ref}/exec HTTP/1.1\r\nHost: d\r\n"
                     "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if status != 101:
            while len(rest) < int(headers.get("content-length", 0)):
                rest += sock.recv(65536)
            return status, headers, rest
        if stdin:
            sock.sendall(stdin)
        sock.shutdown(socket.SHUT_WR)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        decoder = FrameDecoder()
        frames = decoder.feed(rest)
        assert decoder.at_eof()
        return status, headers, frames
    finally:
        sock.close()


def test_skiff_exec_endpoint_streams_and_ends_with_the_exit_code(daemon, ctr):
    import json

    status, headers, frames = skiff_exec(daemon, ctr.id, {
        "Cmd": ["sh", "-c", "cat; echo err >&2; exit 5"], "AttachStdin": True,
        "AttachStdout": True, "AttachStderr": True}, stdin=b"in\n")
    assert status == 101
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert (1, b"in\n") in frames and (2, b"err\n") in frames
    assert frames[-1] == (3, b'{"ExitCode": 5}')
    exec_id = headers["x-skiff-exec-id"]   # the exec stays docker's to inspect
    info = daemon.client().api.exec_inspect(exec_id)
    assert (info["ExitCode"], info["Running"]) == (5, False)
    # a tty's output is framed too (stdout), its size set at start
    status, headers, frames = skiff_exec(daemon, ctr.id, {
        "Cmd": ["sh", "-c", "stty size; exit 2"], "Tty": True, "AttachStdout": True,
        "AttachStderr": True, "ConsoleSize": [31, 97]})
    assert status == 101
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert {s for s, _ in frames[:-1]} == {1}
    assert b"".join(d for _, d in frames[:-1]).strip() == b"31 97"
    assert json.loads(frames[-1][1]) == {"ExitCode": 2}
    # a command that cannot run: docker's message, then its exit code
    status, _, frames = skiff_exec(daemon, ctr.id, {"Cmd": ["nosuch"], "AttachStdout": True})
    assert b"executable file not found in $PATH" in frames[0][1]
    assert frames[-1] == (3, b'{"ExitCode": 127}')


def test_skiff_exec_endpoint_errors_before_the_upgrade(daemon):
    status, _, body = skiff_exec(daemon, "nosuchcontainer", {"Cmd": ["true"]})
    assert status == 404 and b"No such container: nosuchcontainer" in body
    status, _, body = skiff_exec(daemon, "x", {"Cmd": "true", "Tty": "yes"})
    assert status == 400
    stopped = daemon.client().containers.create("busybox", ["true"])
    try:
        status, _, body = skiff_exec(daemon, stopped.id, {"Cmd": ["true"]})
        assert status == 409 and f"Container {stopped.id} is not running".encode() in body
    finally:
        stopped.remove(force=True)


def _children(pid: int) -> dict[int, tuple[str, str]]:
    """{child pid: (state, cmdline)} of the host process `pid`."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        out[int(entry)] = (fields[0], cmdline)
    return out


def test_exec_processes_come_from_the_fork_server_as_the_monitors_children(daemon, ctr):
    """The monitor's fork server clones exec'd processes (CLONE_PARENT): they are the
    monitor's children, and one that fails to start is reaped, not left a zombie."""
    api = daemon.client().api
    for _ in range(3):   # the server starts in the background at the first exec
        assert daemon.cli("exec", ctr.id, "true").returncode == 0
        time.sleep(0.2)
    monitor = daemon.monitor_pid()
    servers = [p for p, (_, cmd) in _children(monitor).items()
               if "skiff.monitor.forkserver" in cmd]
    assert len(servers) == 1, _children(monitor)
    exec_id = api.exec_create(ctr.id, ["sleep", "30"])["Id"]
    api.exec_start(exec_id, detach=True)
    pid = 0
    for _ in range(100):
        pid = api.exec_inspect(exec_id)["Pid"]
        if pid:
            break
        time.sleep(0.05)
    assert pid in _children(monitor), (pid, _children(monitor))
    os.kill(pid, 9)
    for _ in range(3):
        assert daemon.cli("exec", ctr.id, "nosuch").returncode == 127
        assert daemon.cli("exec", "-w", "/nonexistent", ctr.id, "true").returncode != 0
    time.sleep(0.2)
    zombies = {p: c for p, c in _children(monitor).items() if c[0] == "Z"}
    assert not zombies
    assert servers[0] in _children(monitor)   # the same server served them all
