"""skiff.client against a scripted fake daemon on a Unix socket: negotiation, errors,
streaming bodies, uploads, and the hijacked connection (101, buffered bytes, half-close)."""

import importlib.util
import io
import json
import os
import socket
import struct
import sys
import threading
import time

import pytest



def _load_fake():
    """The fake daemon module, loaded by path (works under every pytest import mode)."""
    name = "skiff_test_fake_daemon"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(os.path.dirname(__file__), "test_client_fakedaemon.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()

from skiff.client import APIError, Client, DaemonUnreachable, HijackedStream, ProtocolError  # noqa: E402
from skiff.client.client import encode_params, error_message, negotiate  # noqa: E402
from skiff.client.transport import (  # noqa: E402
    ChunkedDecoder,
    Headers,
    body_framing,
    parse_host,
    parse_response_head,
)
from skiff.errors import InvalidArgument  # noqa: E402
from skiff.wire.version import API_VERSION  # noqa: E402


@pytest.fixture
def daemon():
    d = fake.FakeDaemon()
    try:
        yield d
    finally:
        d.close()


def frame(stream, data):
    return struct.pack(">B3xI", stream, len(data)) + data


# -- pure pieces -----------------------------------------------------------------------------


def test_public_surface_is_lazy_and_complete():
    import subprocess

    code = ("import sys, skiff.client as c; assert 'skiff.client.client' not in sys.modules; "
            "[getattr(c, n) for n in c.__all__]; "
            "assert 'http.client' not in sys.modules, 'http.client is slow to import'; "
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("host, expected", [
    ("unix:///run/skiff/skiff.sock", ("unix", "/run/skiff/skiff.sock")),
    ("/tmp/x.sock", ("unix", "/tmp/x.sock")),
    ("tcp://127.0.0.1:2375", ("tcp", ("127.0.0.1", 2375))),
    ("tcp://localhost", ("tcp", ("localhost", 2375))),
    ("http://[::1]:1234", ("tcp", ("::1", 1234))),
])
def test_parse_host(host, expected):
    assert parse_host(host) == expected


@pytest.mark.parametrize("host", ["", "ssh://x", "unix://relative", "tcp://h:notaport", "nohost"])
def test_parse_host_rejects(host):
    with pytest.raises(InvalidArgument):
        parse_host(host)


def test_encode_params():
    q = encode_params({"all": True, "force": False, "skip": None, "t": 3, "x": ["a", "b"],
                       "filters": {"label": {"a=b": True}}})
    assert q == "all=1&force=0&t=3&x=a&x=b&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"


def test_negotiate():
    assert negotiate("1.47", "1.41") == "1.41"
    assert negotiate("1.47", "1.51") == "1.47"
    assert negotiate("1.47", None) == "1.24"


def test_error_message():
    assert error_message(404, "Not Found", b'{"message":"No such container: x"}\n') == \
        "No such container: x"
    assert error_message(500, "Internal Server Error", b"boom\n") == "boom"
    assert error_message(502, "Bad Gateway", b"") == "502 Bad Gateway"


def test_parse_response_head():
    status, reason, headers = parse_response_head(
        b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\nX-A: 1\r\nX-A: 2\r\n\r\n")
    assert (status, reason) == (101, "UPGRADED")
    assert headers["upgrade"] == "tcp" and headers["x-a"] == "1, 2"
    with pytest.raises(ProtocolError):
        parse_response_head(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_chunked_decoder_byte_by_byte():
    body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
    whole = ChunkedDecoder()
    assert whole.feed(body) == b"hello world" and whole.done
    split = ChunkedDecoder()
    assert b"".join(split.feed(body[i:i + 1]) for i in range(len(body))) == b"hello world"
    assert split.done


@pytest.mark.parametrize("bad", [b"zz\r\n", b"3\r\nabcXY", b"1" * 5000])
def test_chunked_decoder_rejects(bad):
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(bad)


@pytest.mark.parametrize("method, status, headers, expected", [
    ("GET", 200, {"content-length": "5"}, ("length", 5)),
    ("GET", 200, {"transfer-encoding": "chunked", "content-length": "5"}, ("chunked", 0)),
    ("GET", 200, {}, ("close", 0)),
    ("HEAD", 200, {"content-length": "5"}, ("none", 0)),
    ("POST", 204, {}, ("none", 0)),
    ("POST", 304, {}, ("none", 0)),
    ("POST", 101, {}, ("none", 0)),
])
def test_body_framing(method, status, headers, expected):
    assert body_framing(method, status, Headers(headers)) == expected


# -- connecting and negotiating --------------------------------------------------------------


def test_missing_socket_is_unreachable(tmp_path):
    client = Client(f"unix://{tmp_path}/none.sock")
    with pytest.raises(DaemonUnreachable) as info:
        client.get("/info")
    assert isinstance(info.value, ConnectionError)
    assert "Cannot connect to the skiff daemon at unix://" in str(info.value)


def test_refusing_socket_is_unreachable(tmp_path):
    path = str(tmp_path / "dead.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)  # bound, never listening: connect() is refused
    try:
        with pytest.raises(DaemonUnreachable):
            Client(f"unix://{path}").ping()
    finally:
        sock.close()


def test_negotiates_down_to_server_version(daemon):
    daemon.api_version = "1.41"
    daemon.reply("GET", "/info", fake.json_reply({"ID": "x"}))
    client = Client(daemon.host)
    assert client.get("/info") == {"ID": "x"}
    assert client.api_version == "1.41"
    assert daemon.requests[0].path == "/_ping" and daemon.requests[0].version is None
    assert daemon.requests[-1].target == "/v1.41/info"


def test_negotiates_our_max_against_newer_server(daemon):
    daemon.api_version = "9.99"
    client = Client(daemon.host)
    assert client.api_version == API_VERSION


def test_server_without_version_header_gets_oldest(daemon):
    daemon.api_version = None
    assert Client(daemon.host).api_version == "1.24"


def test_pinned_version_skips_ping(daemon):
    daemon.reply("GET", "/info", fake.json_reply({}))
    Client(daemon.host, version="1.44").get("/info")
    assert [r.target for r in daemon.requests] == ["/v1.44/info"]


# -- requests --------------------------------------------------------------------------------


def test_json_body_and_query(daemon):
    seen = {}

    def create(req, sock):
        seen["req"] = req
        return fake.json_reply({"Id": "abc", "Warnings": []}, 201)

    daemon.route("POST", "/containers/create", create)
    client = Client(daemon.host, version="1.45")
    out = client.post("/containers/create", {"name": "web"}, {"Image": "busybox"})
    assert out == {"Id": "abc", "Warnings": []}
    req = seen["req"]
    assert req.query == {"name": "web"}
    assert json.loads(req.body) == {"Image": "busybox"}
    assert req.headers["content-type"] == "application/json"


@pytest.mark.parametrize("reply, status, message", [
    (fake.error_reply(404, "No such container: web"), 404, "No such container: web"),
    (fake.Reply(500, b"plain failure\n"), 500, "plain failure"),
    (fake.Reply(409, b""), 409, "409 Conflict"),
])
def test_errors_become_api_errors(daemon, reply, status, message):
    daemon.reply("DELETE", "/containers/web", reply)
    with pytest.raises(APIError) as info:
        Client(daemon.host, version="1.45").delete("/containers/web")
    assert info.value.status == status
    assert info.value.message == message
    assert info.value.explanation() == f"Error response from daemon: {message}"


def test_304_is_not_an_error(daemon):
    daemon.reply("POST", "/containers/web/start", fake.Reply(304, b""))
    resp = Client(daemon.host, version="1.45").request("POST", "/containers/web/start")
    assert resp.status == 304


def test_streamed_json_arrives_incrementally(daemon):
    messages = [{"status": "Pulling fs layer", "id": "a1"}, {"status": "Done", "id": "a1"},
                {"status": "Status: Downloaded newer image for busybox:latest"}]
    raw = b"".join(json.dumps(m).encode() + b"\r\n" for m in messages)
    pieces = [raw[i:i + 7] for i in range(0, len(raw), 7)]
    daemon.reply("POST", "/images/create",
                 fake.Reply(200, chunks=pieces, headers={"Content-Type": "application/json"}))
    with Client(daemon.host, version="1.45").request(
            "POST", "/images/create", {"fromImage": "busybox"}, stream=True) as resp:
        assert list(resp.iter_json()) == messages


def test_streamed_frames_are_demultiplexed(daemon):
    body = frame(1, b"out 1\n") + frame(2, b"err 1\n") + frame(1, b"out 2\n")
    daemon.reply("GET", "/containers/web/logs", fake.Reply(
        200, chunks=[body[:3], body[3:11], body[11:]],
        headers={"Content-Type": "application/vnd.docker.multiplexed-stream"}))
    with Client(daemon.host, version="1.45").request(
            "GET", "/containers/web/logs", stream=True) as resp:
        assert resp.content_type == "application/vnd.docker.multiplexed-stream"
        assert list(resp.iter_frames()) == [(1, b"out 1\n"), (2, b"err 1\n"), (1, b"out 2\n")]


def test_chunks_arrive_before_the_stream_ends(daemon):
    release = threading.Event()

    def follow(req, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"6\r\nfirst\n\r\n")
        release.wait(5)
        sock.sendall(b"7\r\nsecond\n\r\n0\r\n\r\n")
        sock.close()
        return None

    daemon.route("GET", "/containers/web/logs", follow)
    resp = Client(daemon.host, version="1.45").request(
        "GET", "/containers/web/logs", {"follow": 1}, stream=True)
    chunks = resp.iter_chunks()
    assert next(chunks) == b"first\n"   # would hang if the client waited for the end
    release.set()
    assert b"".join(chunks) == b"second\n"


def test_upload_from_file_object_is_chunked(daemon):
    got = {}

    def load(req, sock):
        got["req"] = req
        return fake.Reply(200, chunks=[b'{"stream":"Loaded image: busybox:latest\\n"}\n'],
                          headers={"Content-Type": "application/json"})

    daemon.route("POST", "/images/load", load)
    payload = os.urandom(300_000)
    with Client(daemon.host, version="1.45").request(
            "POST", "/images/load", body=io.BytesIO(payload),
            headers={"Content-Type": "application/x-tar"}, stream=True) as resp:
        assert list(resp.iter_json()) == [{"stream": "Loaded image: busybox:latest\n"}]
    assert got["req"].headers.get("transfer-encoding") == "chunked"
    assert got["req"].body == payload


def test_upload_with_content_length(daemon, tmp_path):
    got = {}
    daemon.route("POST", "/images/load",
                 lambda req, sock: got.setdefault("req", req) and fake.Reply(200, b""))
    path = tmp_path / "img.tar"
    path.write_bytes(b"x" * 1000)
    with open(path, "rb") as f:
        Client(daemon.host, version="1.45").request(
            "POST", "/images/load", body=f, headers={"Content-Length": "1000"})
    assert got["req"].headers["content-length"] == "1000"
    assert got["req"].body == b"x" * 1000


def test_pending_response_reports_headers(daemon):
    release = threading.Event()

    def wait(req, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        release.wait(5)
        body = b'{"StatusCode":3}\n'
        sock.sendall(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        sock.close()
        return None

    daemon.route("POST", "/containers/web/wait", wait)
    pending = Client(daemon.host, version="1.45").begin(
        "POST", "/containers/web/wait", {"condition": "next-exit"})
    assert pending.headers_ready(5)
    release.set()
    assert pending.response().json() == {"StatusCode": 3}
    assert daemon.requests[-1].query == {"condition": "next-exit"}


# -- hijack ----------------------------------------------------------------------------------


def test_hijack_keeps_early_bytes_and_half_closes(daemon):
    got = {}

    def attach(req, sock):
        got["req"] = req
        # the 101 head and the first output in one write: the client must not lose them
        sock.sendall(b"HTTP/1.1 101 UPGRADED\r\n"
                     b"Content-Type: application/vnd.docker.multiplexed-stream\r\n"
                     b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frame(1, b"hello\n"))
        data = b""
        while True:  # read stdin until the client half-closes
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        got["stdin"] = data
        sock.sendall(frame(1, data.upper()) + frame(2, b"bye\n"))
        sock.close()
        return None

    daemon.route("POST", "/containers/web/attach", attach)
    stream = Client(daemon.host, version="1.45").hijack(
        "POST", "/containers/web/attach", {"stream": 1, "stdin": 1, "stdout": 1})
    assert isinstance(stream, HijackedStream)
    assert stream.multiplexed is True
    assert stream.pending
    stream.sendall(b"some input\n")
    stream.close_write()
    frames = list(stream.iter_frames())
    stream.close()
    assert frames == [(1, b"hello\n"), (1, b"SOME INPUT\n"), (2, b"bye\n")]
    assert got["stdin"] == b"some input\n"
    headers = got["req"].headers
    assert headers["connection"] == "Upgrade" and headers["upgrade"] == "tcp"
    assert got["req"].query == {"stream": "1", "stdin": "1", "stdout": "1"}


def test_hijack_error_is_api_error(daemon):
    daemon.reply("POST", "/containers/nope/attach",
                 fake.error_reply(404, "No such container: nope"))
    with pytest.raises(APIError) as info:
        Client(daemon.host, version="1.45").hijack("POST", "/containers/nope/attach")
    assert info.value.status == 404 and info.value.message == "No such container: nope"


def test_hijack_chunked_error_body(daemon):
    daemon.reply("POST", "/exec/x/start", fake.Reply(
        409, chunks=[b'{"message":', b'"container is not running"}'],
        headers={"Content-Type": "application/json"}))
    with pytest.raises(APIError) as info:
        Client(daemon.host, version="1.45").hijack("POST", "/exec/x/start", json_body={})
    assert info.value.message == "container is not running"


def test_hijack_raw_stream_for_tty(daemon):
    def attach(req, sock):
        sock.sendall(b"HTTP/1.1 101 UPGRADED\r\n"
                     b"Content-Type: application/vnd.docker.raw-stream\r\n\r\nraw bytes")
        sock.close()
        return None

    daemon.route("POST", "/containers/t/attach", attach)
    stream = Client(daemon.host, version="1.45").hijack("POST", "/containers/t/attach")
    assert stream.multiplexed is False
    assert b"".join(stream.iter_chunks()) == b"raw bytes"
    stream.close()


def test_protocol_error_on_garbage(daemon):
    def garbage(req, sock):
        sock.sendall(b"this is not http\r\n\r\n")
        sock.close()
        return None

    daemon.route("POST", "/containers/g/attach", garbage)
    with pytest.raises(ProtocolError):
        Client(daemon.host, version="1.45").hijack("POST", "/containers/g/attach")


def test_request_is_fast(daemon):
    daemon.reply("GET", "/info", fake.json_reply({}))
    client = Client(daemon.host)
    client.get("/info")
    start = time.perf_counter()
    for _ in range(50):
        client.get("/info")
    assert (time.perf_counter() - start) / 50 < 0.02


def test_body_delimited_by_close(daemon):
    def old_style(req, sock):
        sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}")
        sock.close()
        return None

    daemon.route("GET", "/old", old_style)
    assert Client(daemon.host, version="1.45").get("/old") == {"a": 1}


def test_truncated_body_is_a_protocol_error(daemon):
    def short(req, sock):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":")
        sock.close()
        return None

    daemon.route("GET", "/short", short)
    with pytest.raises(ProtocolError, match="missing"):
        Client(daemon.host, version="1.45").get("/short")


def test_error_answer_to_an_upload(daemon):
    daemon.reply("POST", "/images/load", fake.error_reply(400, "not a tar file"))
    with pytest.raises(APIError) as info:
        Client(daemon.host, version="1.45").request(
            "POST", "/images/load", body=io.BytesIO(b"x" * 100))
    assert info.value.status == 400 and info.value.message == "not a tar file"


def test_early_answer_while_sending(tmp_path):
    """A daemon that answers and hangs up without reading a large body: the client reports
    the daemon's answer, not a broken pipe."""
    path = str(tmp_path / "early.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    body = b'{"message":"too large"}'

    def serve():
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(4096)
        conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(APIError) as info:
            Client(f"unix://{path}", version="1.45").request(
                "POST", "/images/load", body=io.BytesIO(b"x" * (8 << 20)))
        assert info.value.status == 413 and info.value.message == "too large"
    finally:
        thread.join(5)
        server.close()
