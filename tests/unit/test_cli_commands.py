"""CLI commands end to end against the scripted fake daemon: the calls made, their order and
parameters, the output, and the exit status."""

import importlib.util
import io
import json
import os
import struct
import sys
import tempfile
import threading
import time

import pytest

from skiff.cli.main import main


def _load_fake():
    name = "skiff_test_fake_daemon"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(os.path.dirname(__file__), "test_client_fakedaemon.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()
CID = "c0ffee" + "0" * 58


def frame(stream, data):
    return struct.pack(">B3xI", stream, len(data)) + data


@pytest.fixture
def daemon():
    d = fake.FakeDaemon()
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def cli(daemon, monkeypatch):
    """Run `skiff -H <fake> ARGS` with real file descriptors for stdio; returns
    (status, stdout, stderr)."""
    monkeypatch.setenv("SKIFF_NO_AUTOSTART", "1")

    def run(*argv, stdin: bytes = b""):
        r, w = os.pipe()
        os.write(w, stdin)
        os.close(w)
        with tempfile.TemporaryFile("w+", newline="") as out, \
                tempfile.TemporaryFile("w+", newline="") as err, \
                io.TextIOWrapper(open(r, "rb")) as inp:
            monkeypatch.setattr(sys, "stdin", inp)
            monkeypatch.setattr(sys, "stdout", out)
            monkeypatch.setattr(sys, "stderr", err)
            status = main(["-H", daemon.host, *argv])
            out.flush()
            err.flush()
            out.seek(0)
            err.seek(0)
            result = status, out.read(), err.read()
            monkeypatch.undo()
            monkeypatch.setenv("SKIFF_NO_AUTOSTART", "1")
        return result

    return run


# -- run -------------------------------------------------------------------------------------


class RunScript:
    """The daemon side of `docker run`: create (404 first when `missing_image`), pull, attach
    (output after start), wait (answers once the attach ended), start."""

    def __init__(self, daemon, *, missing_image=False, exit_code=0, start_error=None,
                 tty=False, echo_stdin=False):
        self.daemon = daemon
        self.missing = missing_image
        self.exit_code = exit_code
        self.start_error = start_error
        self.tty = tty
        self.echo_stdin = echo_stdin
        self.started = threading.Event()
        self.attach_done = threading.Event()
        self.wait_registered = False
        self.stdin_seen = None
        self.bodies = []
        daemon.route("POST", "/containers/create", self.create)
        daemon.route("POST", "/images/create", self.pull)
        daemon.route("POST", "/containers/[^/]+/attach", self.attach)
        daemon.route("POST", "/containers/[^/]+/wait", self.wait)
        daemon.route("POST", "/containers/[^/]+/start", self.start)
        daemon.route("POST", "/containers/[^/]+/resize", lambda req, sock: fake.Reply(200))

    def create(self, req, sock):
        self.bodies.append(json.loads(req.body))
        if self.missing:
            return fake.error_reply(404, "No such image: busybox:latest")
        return fake.json_reply({"Id": CID, "Warnings": ["something to know"]}, 201)

    def pull(self, req, sock):
        self.missing = False
        lines = [{"status": "Pulling from library/busybox", "id": "latest"},
                 {"status": "Pull complete", "progressDetail": {}, "id": "abc"},
                 {"status": "Status: Downloaded newer image for busybox:latest"}]
        return fake.Reply(200, chunks=[json.dumps(m).encode() + b"\r\n" for m in lines],
                          headers={"Content-Type": "application/json"})

    def attach(self, req, sock):
        kind = "raw-stream" if self.tty else "multiplexed-stream"
        sock.sendall(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker."
                     + kind.encode() + b"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
        if not self.started.wait(5):
            sock.close()
            self.attach_done.set()
            return None
        if self.tty:
            sock.sendall(b"tty output\r\n")
        else:
            sock.sendall(frame(1, b"hello\n") + frame(2, b"oops\n"))
        if self.echo_stdin:
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.stdin_seen = data
            sock.sendall(frame(1, data.upper()))
        sock.close()
        self.attach_done.set()
        return None

    def wait(self, req, sock):
        self.wait_registered = not self.started.is_set()
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        if not self.attach_done.wait(10):
            sock.close()
            return None
        body = json.dumps({"StatusCode": self.exit_code, "Error": None}).encode() + b"\n"
        sock.sendall(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        sock.close()
        return None

    def start(self, req, sock):
        if self.start_error:
            self.attach_done.set()
            return fake.error_reply(500, self.start_error)
        self.started.set()
        return fake.Reply(204)


def test_run_pulls_attaches_waits_starts_and_exits_with_the_code(daemon, cli):
    script = RunScript(daemon, missing_image=True, exit_code=3)
    status, out, err = cli("run", "--rm", "busybox", "echo", "hi")
    assert status == 3
    assert out == "hello\n"
    assert "Unable to find image 'busybox:latest' locally\n" in err
    assert "Status: Downloaded newer image for busybox:latest" in err
    assert "WARNING: something to know" in err
    assert "oops\n" in err
    assert daemon.calls() == [
        "POST /containers/create", "POST /images/create", "POST /containers/create",
        f"POST /containers/{CID}/attach", f"POST /containers/{CID}/wait",
        f"POST /containers/{CID}/start"]
    pull = daemon.requests[[r.path for r in daemon.requests].index("/images/create")]
    assert pull.query == {"fromImage": "docker.io/library/busybox", "tag": "latest"}
    by_path = {r.path: r for r in daemon.requests}
    assert by_path[f"/containers/{CID}/wait"].query == {"condition": "removed"}
    assert by_path[f"/containers/{CID}/attach"].query == {
        "stream": "1", "stdin": "0", "stdout": "1", "stderr": "1"}
    assert script.wait_registered, "start was sent before the wait was acknowledged"
    assert script.bodies[-1]["HostConfig"]["AutoRemove"] is True
    assert script.bodies[-1]["Cmd"] == ["echo", "hi"]


def test_run_without_rm_waits_for_next_exit(daemon, cli):
    RunScript(daemon)
    status, out, _ = cli("run", "busybox")
    assert status == 0 and out == "hello\n"
    wait = [r for r in daemon.requests if r.path.endswith("/wait")][0]
    assert wait.query == {"condition": "next-exit"}


def test_run_interactive_copies_stdin_and_half_closes(daemon, cli):
    script = RunScript(daemon, echo_stdin=True, exit_code=0)
    status, out, _ = cli("run", "-i", "busybox", "cat", stdin=b"some input\n")
    assert status == 0
    assert script.stdin_seen == b"some input\n"   # the server saw EOF: we half-closed
    assert out == "hello\nSOME INPUT\n"
    attach = [r for r in daemon.requests if r.path.endswith("/attach")][0]
    assert attach.query["stdin"] == "1"
    body = script.bodies[-1]
    assert body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]


def test_run_with_tty_copies_raw_output(daemon, cli):
    RunScript(daemon, tty=True)
    status, out, _ = cli("run", "-t", "busybox")
    assert status == 0 and out == "tty output\r\n"


def test_run_detached_prints_the_id(daemon, cli):
    RunScript(daemon)
    status, out, _ = cli("run", "-d", "--name", "web", "busybox", "sleep", "9")
    assert status == 0 and out == CID + "\n"
    assert daemon.calls() == ["POST /containers/create", f"POST /containers/{CID}/start"]
    assert daemon.requests[-2].query == {"name": "web"}


@pytest.mark.parametrize("message, status", [
    ('failed to create task: exec: "nosuch": executable file not found in $PATH', 127),
    ('exec: "/etc": permission denied', 126),
    ("some engine failure", 125),
])
def test_run_start_failure_exit_codes(daemon, cli, message, status):
    RunScript(daemon, start_error=message)
    got, out, err = cli("run", "busybox", "nosuch")
    assert got == status
    assert err.endswith(f"skiff: Error response from daemon: {message}\n\n"
                        "Run 'skiff run --help' for more information\n")


def test_run_pull_failure_is_125(daemon, cli):
    daemon.reply("POST", "/containers/create", fake.error_reply(404, "No such image: nosuch:latest"))
    daemon.reply("POST", "/images/create", fake.error_reply(
        404, "pull access denied for nosuch, repository does not exist"))
    status, _, err = cli("run", "nosuch")
    assert status == 125
    assert "Unable to find image 'nosuch:latest' locally" in err
    assert ("skiff: Error response from daemon: pull access denied for nosuch, repository does "
            "not exist\n\nRun 'skiff run --help' for more information\n") in err


def test_run_pull_stream_error_is_125(daemon, cli):
    daemon.reply("POST", "/containers/create", fake.error_reply(404, "No such image: x:latest"))
    daemon.reply("POST", "/images/create", fake.Reply(200, chunks=[
        b'{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n'],
        headers={"Content-Type": "application/json"}))
    status, _, err = cli("run", "x")
    assert status == 125 and "skiff: manifest unknown\n" in err


def test_run_create_conflict_is_125(daemon, cli):
    daemon.reply("POST", "/containers/create", fake.error_reply(
        409, 'Conflict. The container name "/web" is already in use'))
    status, _, err = cli("run", "--name", "web", "busybox")
    assert status == 125
    assert err.startswith('skiff: Error response from daemon: Conflict. The container name')


def test_run_it_without_a_terminal(daemon, cli):
    status, _, err = cli("run", "-it", "busybox")
    assert status == 1 and err == "the input device is not a TTY\n"
    assert daemon.calls() == []


def test_create_errors_are_plain(daemon, cli):
    daemon.reply("POST", "/containers/create", fake.error_reply(409, "Conflict. in use"))
    assert cli("create", "busybox") == (1, "", "Error response from daemon: Conflict. in use\n")


def test_create_prints_the_id(daemon, cli):
    RunScript(daemon)
    status, out, err = cli("create", "-e", "A=1", "busybox")
    assert status == 0 and out == CID + "\n"
    assert "WARNING: something to know" in err


def test_start_attach_returns_the_exit_code(daemon, cli):
    script = RunScript(daemon, exit_code=5)
    daemon.reply("GET", "/containers/web/json", fake.json_reply({
        "Id": CID, "Config": {"Tty": False, "OpenStdin": False},
        "HostConfig": {"AutoRemove": False}}))
    status, out, _ = cli("start", "-a", "web")
    assert status == 5 and out == "hello\n"
    assert daemon.calls()[1:] == [f"POST /containers/{CID}/attach", f"POST /containers/{CID}/wait",
                                  f"POST /containers/{CID}/start"]
    assert script.wait_registered


def test_start_reports_each_failure(daemon, cli):
    daemon.reply("POST", "/containers/a/start", fake.Reply(204))
    daemon.reply("POST", "/containers/b/start", fake.error_reply(404, "No such container: b"))
    status, out, err = cli("start", "a", "b")
    assert status == 1 and out == "a\n"
    assert err == ("Error response from daemon: No such container: b\n"
                   "Error: failed to start containers: b\n")


# -- the other commands ----------------------------------------------------------------------


def test_ps_table(daemon, cli):
    now = int(time.time())
    daemon.reply("GET", "/containers/json", fake.json_reply([
        {"Id": "4bcffb1816f3" + "a" * 52, "Names": ["/web"], "Image": "busybox",
         "ImageID": "sha256:" + "b" * 64, "Command": "sh -c 'echo out; echo err >&2'",
         "Created": now - 130, "State": "running", "Status": "Up 2 minutes",
         "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]},
        {"Id": "0123456789ab" + "c" * 52, "Names": ["/db"], "Image": "sha256:" + "d" * 64,
         "ImageID": "sha256:" + "d" * 64, "Command": "true", "Created": now - 7200,
         "State": "exited", "Status": "Exited (0) About an hour ago", "Ports": []},
    ]))
    status, out, _ = cli("ps", "-a")
    assert status == 0
    assert out == (
        "CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS"
        "                         PORTS                  NAMES\n"
        "4bcffb1816f3   busybox        \"sh -c 'echo out; ec…\"   2 minutes ago   Up 2 minutes"
        "                   0.0.0.0:8080->80/tcp   web\n"
        "0123456789ab   dddddddddddd   \"true\"                   2 hours ago     Exited (0) "
        "About an hour ago                          db\n")
    assert daemon.requests[-1].query == {"all": "1"}


def test_ps_quiet_latest_filters_and_format(daemon, cli):
    daemon.reply("GET", "/containers/json", fake.json_reply([
        {"Id": "a" * 64, "Names": ["/web"], "Image": "busybox", "Command": "x", "Created": 0,
         "Status": "Up", "Labels": {"tier": "db"}}]))
    status, out, _ = cli("ps", "-q", "-l", "-f", "status=running", "-f", "label=a=b")
    assert status == 0 and out == "a" * 12 + "\n"
    query = daemon.requests[-1].query
    assert query["all"] == "1" and query["limit"] == "1"
    assert json.loads(query["filters"]) == {"status": {"running": True}, "label": {"a=b": True}}
    status, out, _ = cli("ps", "--format", '{{.Names}}\\t{{.Label "tier"}}')
    assert out == "web\tdb\n"
    status, out, _ = cli("ps", "--format", "table {{.Names}}\\t{{.Status}}")
    assert out == "NAMES     STATUS\nweb       Up\n"


def test_images_table(daemon, cli):
    now = int(time.time())
    daemon.reply("GET", "/images/json", fake.json_reply([
        {"Id": "sha256:3909bea42041" + "e" * 52, "RepoTags": ["busybox:latest", "busybox:1"],
         "RepoDigests": [], "Created": now - 3 * 365 * 86400, "Size": 1_980_000},
        {"Id": "sha256:" + "f" * 64, "RepoTags": [], "RepoDigests": [],
         "Created": now - 90, "Size": 4_264_000},
    ]))
    status, out, _ = cli("images")
    assert status == 0
    assert out == (
        "REPOSITORY   TAG       IMAGE ID       CREATED              SIZE\n"
        "busybox      latest    3909bea42041   3 years ago          1.98MB\n"
        "busybox      1         3909bea42041   3 years ago          1.98MB\n"
        "<none>       <none>    ffffffffffff   About a minute ago   4.26MB\n")
    status, out, _ = cli("images", "-q", "busybox")
    assert out == "3909bea42041\n3909bea42041\nffffffffffff\n"
    assert json.loads(daemon.requests[-1].query["filters"]) == {"reference": {"busybox": True}}


def test_rm_prints_names_and_collects_errors(daemon, cli):
    daemon.reply("DELETE", "/containers/web", fake.Reply(204))
    daemon.reply("DELETE", "/containers/nope", fake.error_reply(404, "No such container: nope"))
    status, out, err = cli("rm", "-f", "-v", "web")
    assert status == 0 and out == "web\n"
    assert daemon.requests[-1].query == {"force": "1", "v": "1"}
    status, out, err = cli("rm", "web", "nope")
    assert status == 1 and out == "web\n"
    assert err == "Error response from daemon: No such container: nope\n"
    # with -f a missing container is reported but not an error (docker 28)
    status, _, err = cli("rm", "-f", "nope")
    assert status == 0 and "No such container: nope" in err


def test_stop_kill_wait(daemon, cli):
    daemon.reply("POST", "/containers/web/stop", fake.Reply(204))
    daemon.reply("POST", "/containers/web/kill", fake.Reply(204))
    daemon.reply("POST", "/containers/web/wait", fake.json_reply({"StatusCode": 137}))
    assert cli("stop", "-t", "1", "web")[:2] == (0, "web\n")
    assert daemon.requests[-1].query == {"t": "1"}
    assert cli("kill", "-s", "HUP", "web")[:2] == (0, "web\n")
    assert daemon.requests[-1].query == {"signal": "HUP"}
    assert cli("wait", "web")[:2] == (0, "137\n")


def test_logs_are_demultiplexed(daemon, cli):
    daemon.reply("GET", "/containers/web/json", fake.json_reply({"Id": CID, "Config": {"Tty": False}}))
    daemon.reply("GET", "/containers/web/logs", fake.Reply(
        200, chunks=[frame(1, b"out\n"), frame(2, b"err\n")],
        headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}))
    status, out, err = cli("logs", "-f", "-t", "--tail", "5", "web")
    assert (status, out, err) == (0, "out\n", "err\n")
    assert daemon.requests[-1].query == {"stdout": "1", "stderr": "1", "follow": "1",
                                         "timestamps": "1", "tail": "5"}


def test_logs_of_a_tty_container_are_raw(daemon, cli):
    daemon.reply("GET", "/containers/t/json", fake.json_reply({"Id": CID, "Config": {"Tty": True}}))
    daemon.reply("GET", "/containers/t/logs", fake.Reply(200, b"raw\r\n"))
    assert cli("logs", "t")[:2] == (0, "raw\r\n")


def test_logs_since_is_a_timestamp():
    from skiff.cli.commands.containers import parse_go_duration, timestamp_param

    assert parse_go_duration("1h30m") == 5400 and parse_go_duration("abc") is None
    assert timestamp_param("42m", now=10_000) == "7480.000000000"
    assert timestamp_param("1970-01-02T00:00:00Z") == "86400.000000000"
    assert timestamp_param("1700000000") == "1700000000"


def test_inspect_tries_container_then_image(daemon, cli):
    image = {"Id": "sha256:abc", "RepoTags": ["busybox:latest"], "Config": {"Cmd": ["sh"]}}
    daemon.reply("GET", "/containers/busybox/json", fake.error_reply(404, "No such container: busybox"))
    daemon.reply("GET", "/images/busybox/json", fake.json_reply(image))
    status, out, _ = cli("inspect", "busybox")
    assert status == 0
    assert out == json.dumps([image], indent=4) + "\n"
    status, out, _ = cli("inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "busybox")
    assert out == 'sha256:abc ["sh"]\n'
    status, out, err = cli("inspect", "nothing")
    assert status == 1 and out == "[]\n" and err == "Error: No such object: nothing\n"


def test_load_streams_the_file(daemon, cli, tmp_path):
    got = {}

    def load(req, sock):
        got["req"] = req
        return fake.Reply(200, chunks=[b'{"stream":"Loaded image: busybox:latest\\n"}\r\n'],
                          headers={"Content-Type": "application/json"})

    daemon.route("POST", "/images/load", load)
    path = tmp_path / "busybox.tar"
    path.write_bytes(b"tar" * 1000)
    status, out, _ = cli("load", "-i", str(path))
    assert (status, out) == (0, "Loaded image: busybox:latest\n")
    assert got["req"].body == b"tar" * 1000
    assert got["req"].headers["content-type"] == "application/x-tar"
    status, out, _ = cli("load", "-q", stdin=b"from stdin")
    assert status == 0 and got["req"].body == b"from stdin"
    assert got["req"].query == {"quiet": "1"}
    status, _, err = cli("load", "-i", str(tmp_path / "missing.tar"))
    assert status == 1 and "no such file or directory" in err


def test_rmi(daemon, cli):
    daemon.reply("DELETE", "/images/busybox", fake.json_reply(
        [{"Untagged": "busybox:latest"}, {"Deleted": "sha256:abc"}]))
    daemon.reply("DELETE", "/images/nope", fake.error_reply(404, "No such image: nope:latest"))
    status, out, err = cli("rmi", "busybox", "nope")
    assert status == 1
    assert out == "Untagged: busybox:latest\nDeleted: sha256:abc\n"
    assert err == "Error response from daemon: No such image: nope:latest\n"


def test_pull(daemon, cli):
    RunScript(daemon)
    status, out, _ = cli("pull", "busybox")
    assert status == 0
    assert out.startswith("Using default tag: latest\n")
    assert out.endswith("Status: Downloaded newer image for busybox:latest\n"
                        "docker.io/library/busybox:latest\n")
    status, out, _ = cli("pull", "-q", "localhost:5000/app:1")
    assert out == "localhost:5000/app:1\n"
    assert daemon.requests[-1].query == {"fromImage": "localhost:5000/app", "tag": "1"}


def test_version_and_info(daemon, cli):
    daemon.reply("GET", "/version", fake.json_reply({
        "Platform": {"Name": "skiff"}, "Version": "0.1.0", "ApiVersion": "1.45",
        "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64", "Components": [
            {"Name": "Engine", "Version": "0.1.0", "Details": {
                "ApiVersion": "1.45", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
                "Experimental": "false"}}]}))
    status, out, _ = cli("version")
    assert status == 0
    assert " API version:       1.45 (downgraded from " in out
    assert "Server: skiff\n Engine:\n  Version:          0.1.0\n" in out
    assert "  API version:      1.45 (minimum version 1.24)\n" in out
    status, out, _ = cli("version", "-f", "{{.Server.Version}}")
    assert out == "0.1.0\n"
    daemon.reply("GET", "/info", fake.json_reply({
        "Containers": 2, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 1,
        "Images": 1, "ServerVersion": "0.1.0", "Driver": "overlay2", "MemTotal": 16 * 2**30,
        "NCPU": 4, "Warnings": ["WARNING: no swap limit support"]}))
    status, out, err = cli("info")
    assert status == 0
    assert " Containers: 2\n  Running: 1\n  Paused: 0\n  Stopped: 1\n Images: 1\n" in out
    assert " Total Memory: 16GiB\n" in out and " CPUs: 4\n" in out
    assert err == "WARNING: no swap limit support\n"


def test_version_without_daemon_prints_the_client(cli, tmp_path):
    status, out, err = main_status = cli("-H", f"unix://{tmp_path}/none.sock", "version")
    assert status == 1 and out.startswith("Client:\n Version:")
    assert "Cannot connect to the skiff daemon" in err


# -- exec ------------------------------------------------------------------------------------


def _upgrade(sock, content_type="application/vnd.docker.multiplexed-stream", extra=""):
    sock.sendall(f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\n"
                 f"Connection: Upgrade\r\nUpgrade: tcp\r\n{extra}\r\n".encode())


def test_exec_one_round_trip_on_skiffd(daemon, cli):
    """skiffd's /skiff/containers/{id}/exec: one request (no /_ping, no create, start or
    inspect), the output demultiplexed, the exit code from the stream's last frame."""
    got = {}

    def run(req, sock):
        got["req"] = req
        _upgrade(sock, extra="X-Skiff-Exec-Id: e1\r\n")
        sock.sendall(frame(1, b"out\n") + frame(2, b"err\n") +
                     frame(3, json.dumps({"ExitCode": 7}).encode()))
        sock.close()

    daemon.route("POST", "/skiff/containers/web/exec", run)
    status, out, err = cli("exec", "-u", "1000", "-w", "/tmp", "-e", "A=b", "web", "sh", "-c",
                           "x")
    assert (status, out, err) == (7, "out\n", "err\n")
    assert [f"{r.method} {r.path}" for r in daemon.requests] == [
        "POST /skiff/containers/web/exec"]
    assert got["req"].version is None
    assert got["req"].headers["upgrade"] == "tcp"
    body = json.loads(got["req"].body)
    assert body["Cmd"] == ["sh", "-c", "x"] and body["User"] == "1000"
    assert body["WorkingDir"] == "/tmp" and body["Env"] == ["A=b"]
    assert body["AttachStdout"] and body["AttachStderr"] and not body["AttachStdin"]
    assert body["Detach"] is False and body["Tty"] is False


def test_exec_without_exit_frame_asks_for_the_exit_code(daemon, cli):
    def run(req, sock):
        _upgrade(sock, extra="X-Skiff-Exec-Id: e1\r\n")
        sock.sendall(frame(1, b"partial"))
        sock.close()

    daemon.route("POST", "/skiff/containers/web/exec", run)
    daemon.reply("GET", "/exec/e1/json", fake.json_reply({"Running": True, "ExitCode": None}))
    status, out, _ = cli("exec", "web", "true")
    assert (status, out) == (0, "partial")
    assert daemon.calls() == ["POST /skiff/containers/web/exec", "GET /exec/e1/json"]


def test_exec_errors_from_skiffd(daemon, cli):
    daemon.reply("POST", "/skiff/containers/nope/exec",
                 fake.error_reply(404, "No such container: nope"))
    status, _, err = cli("exec", "nope", "true")
    assert status == 1 and err == "Error response from daemon: No such container: nope\n"
    assert daemon.calls() == ["POST /skiff/containers/nope/exec"]   # no fallback


def test_exec_falls_back_to_docker_requests(daemon, cli):
    """A daemon without skiff's endpoint (dockerd: 404 page not found) gets docker's
    create, start (hijacked) and inspect."""
    def start(req, sock):
        _upgrade(sock)
        sock.sendall(frame(1, b"hello\n"))
        sock.close()

    daemon.reply("POST", "/containers/web/exec", fake.json_reply({"Id": "e2"}, 201))
    daemon.route("POST", "/exec/e2/start", start)
    daemon.reply("GET", "/exec/e2/json", fake.json_reply({"Running": False, "ExitCode": 3}))
    status, out, _ = cli("exec", "web", "true")
    assert (status, out) == (3, "hello\n")
    assert daemon.calls() == ["POST /skiff/containers/web/exec", "POST /containers/web/exec",
                              "POST /exec/e2/start", "GET /exec/e2/json"]


def test_exec_detached_uses_docker_requests(daemon, cli):
    daemon.reply("POST", "/containers/web/exec", fake.json_reply({"Id": "e3"}, 201))
    daemon.reply("POST", "/exec/e3/start", fake.Reply(200, b""))
    status, _, _ = cli("exec", "-d", "web", "sleep", "1")
    assert status == 0
    assert daemon.calls() == ["POST /containers/web/exec", "POST /exec/e3/start"]
    assert json.loads(daemon.requests[-1].body) == {"Detach": True, "Tty": False}
