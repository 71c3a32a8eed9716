"""`cp` and the archive API: both directions, running and stopped containers, docker's rules
for where files land, symlinks resolved inside the container, hostile archives contained."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid

import pytest

pytestmark = pytest.mark.root


def ok(result):
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="skiff-cp-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def running(daemon):
    name = "cp-" + uuid.uuid4().hex[:8]
    ok(daemon.cli("run", "-d", "--name", name, "busybox", "sleep", "300"))
    try:
        yield name
    finally:
        daemon.cli("rm", "-f", name)


def test_copy_both_ways_with_a_running_container(daemon, running, workdir):
    src = os.path.join(workdir, "tree")
    os.makedirs(os.path.join(src, "sub"))
    with open(os.path.join(src, "sub", "file"), "w") as f:
        f.write("payload\n")
    os.chmod(os.path.join(src, "sub", "file"), 0o640)
    os.symlink("file", os.path.join(src, "sub", "link"))
    ok(daemon.cli("cp", src, f"{running}:/tmp"))          # into an existing directory
    listing = ok(daemon.cli("exec", running, "ls", "-l", "/tmp/tree/sub"))
    assert "-rw-r-----" in listing and "link -> file" in listing
    ok(daemon.cli("cp", f"{src}/sub/.", f"{running}:/copied"))   # contents, as a new dir
    assert ok(daemon.cli("exec", running, "cat", "/copied/file")) == "payload\n"
    ok(daemon.cli("cp", f"{src}/sub/file", f"{running}:/etc/renamed"))  # a new file name
    assert ok(daemon.cli("exec", running, "cat", "/etc/renamed")) == "payload\n"

    back = os.path.join(workdir, "back")
    ok(daemon.cli("cp", f"{running}:/tmp/tree", back))      # a new local name
    with open(os.path.join(back, "sub", "file")) as f:
        assert f.read() == "payload\n"
    assert os.readlink(os.path.join(back, "sub", "link")) == "file"
    assert oct(os.stat(os.path.join(back, "sub", "file")).st_mode & 0o777) == "0o640"
    into = os.path.join(workdir, "into")
    os.mkdir(into)
    ok(daemon.cli("cp", f"{running}:/etc/passwd", into))    # into a local directory
    assert open(os.path.join(into, "passwd")).read().startswith("root:")


def test_errors_are_dockers(daemon, running, workdir):
    missing = daemon.cli("cp", f"{running}:/no/such", workdir)
    assert missing.returncode == 1
    assert f"Could not find the file /no/such in container {running}" in \
        missing.stderr.decode()
    assert daemon.cli("cp", workdir, f"{running}:/etc/passwd").stderr.decode().strip() \
        == "cannot copy directory"
    assert "must specify at least one container source" in \
        daemon.cli("cp", workdir, workdir + "2").stderr.decode()
    assert "No such container" in daemon.cli("cp", "cp-nonexistent:/etc", workdir) \
        .stderr.decode()


def test_stopped_container_and_tar_streams(daemon, workdir):
    name = "cp-stopped-" + uuid.uuid4().hex[:6]
    ok(daemon.cli("create", "--name", name, "busybox", "cat", "/data/in"))
    try:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo("in")
            info.size, info.uid, info.gid = 6, 1234, 4321
            tar.addfile(info, io.BytesIO(b"hello\n"))
        # `-` reads a tar from stdin; the destination must be a directory in the container.
        ok(daemon.cli("cp", "-a", "-", f"{name}:/etc", input=archive.getvalue()))
        ok(daemon.cli("cp", f"{name}:/etc/in", os.path.join(workdir, "in")))
        assert open(os.path.join(workdir, "in")).read() == "hello\n"
        out = daemon.cli("cp", f"{name}:/etc/in", "-")
        with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
            member = tar.getmember("in")
            assert (member.uid, member.gid) == (1234, 4321)    # -a kept them
        # Nothing of the stopped container stays mounted on the host.
        with open("/proc/self/mountinfo") as f:
            assert daemon.root not in f.read()
    finally:
        daemon.cli("rm", "-f", name)


def test_symlinks_resolve_inside_the_container(daemon, running, workdir):
    # /tmp/evil -> /etc in the container: reading through it gives the container's /etc,
    # never the host's, and a link to an absolute host path cannot reach the host.
    ok(daemon.cli("exec", running, "sh", "-c",
                  "ln -s /etc /tmp/evil && echo in-container > /etc/marker"))
    ok(daemon.cli("cp", f"{running}:/tmp/evil/marker", os.path.join(workdir, "m")))
    assert open(os.path.join(workdir, "m")).read() == "in-container\n"
    # -L follows a link given as the source; without it the link itself is copied.
    ok(daemon.cli("cp", f"{running}:/tmp/evil", os.path.join(workdir, "link")))
    assert os.readlink(os.path.join(workdir, "link")) == "/etc"
    ok(daemon.cli("cp", "-L", f"{running}:/tmp/evil", os.path.join(workdir, "followed")))
    assert os.path.isfile(os.path.join(workdir, "followed", "marker"))


def test_hostile_archive_stays_in_its_directory(daemon, running):
    client = daemon.client()
    container = client.containers.get(running)
    container.exec_run(["mkdir", "/dest"])
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("../../escaped", b"x"), ("/abs-escaped", b"y")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("lnk")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        tar.addfile(link)
        through = tarfile.TarInfo("lnk/etc/through-link")
        through.size = 1
        tar.addfile(through, io.BytesIO(b"z"))
    container.put_archive("/dest", archive.getvalue())
    found = container.exec_run(["find", "/", "-xdev", "-name", "*escaped*", "-o", "-name",
                                "through-link"]).output.decode().split()
    assert sorted(found) == ["/dest/abs-escaped", "/dest/escaped", "/dest/etc/through-link"]
    assert not os.path.exists("/escaped") and not os.path.exists("/abs-escaped")
    # A hard link named ../../etc/passwd can only point inside /dest, where there is none:
    # refused, and the container's /etc/passwd keeps its single name.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../etc/passwd"
        tar.addfile(hard)
    import docker.errors

    with pytest.raises(docker.errors.APIError):
        container.put_archive("/dest", archive.getvalue())
    links = container.exec_run(["stat", "-c", "%h", "/etc/passwd"]).output.decode().strip()
    assert links == "1"
    assert container.exec_run(["test", "-e", "/dest/hard"]).exit_code != 0


def test_archive_api_with_the_sdk(daemon, running):
    client = daemon.client()
    container = client.containers.get(running)
    stream, stat = container.get_archive("/etc/passwd")
    assert stat["name"] == "passwd" and stat["size"] > 0 and not stat["linkTarget"]
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.extractfile("passwd").read().startswith(b"root:")
    # HEAD answers with the stat header alone.
    raw = client.api.head(client.api._url("/containers/{0}/archive", running),
                           params={"path": "/etc"})
    assert raw.status_code == 200 and not raw.content
    decoded = json.loads(base64.b64decode(raw.headers["X-Docker-Container-Path-Stat"]))
    assert decoded["name"] == "etc" and decoded["mode"] & (1 << 31)    # Go's ModeDir
    # A file where a directory is wanted, and the reverse, as docker refuses them.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("etc")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    import docker.errors

    url = client.api._url("/containers/{0}/archive", running)
    refused = client.api.put(url, params={"path": "/", "noOverwriteDirNonDir": "true"},
                             data=archive.getvalue())
    assert refused.status_code == 400
    assert "cannot overwrite directory" in refused.json()["message"]
    with pytest.raises(docker.errors.APIError) as err:
        client.api.put_archive(running, "/etc/passwd", archive.getvalue())
    assert err.value.status_code == 400 and "not a directory" in str(err.value)
    with pytest.raises(docker.errors.NotFound):
        client.api.put_archive(running, "/nowhere", archive.getvalue())


def test_read_only_rootfs_is_refused_but_tmpfs_is_writable(daemon, workdir):
    name = "cp-ro-" + uuid.uuid4().hex[:6]
    ok(daemon.cli("run", "-d", "--read-only", "--tmpfs", "/scratch", "--name", name,
                  "busybox", "sleep", "300"))
    try:
        path = os.path.join(workdir, "f")
        open(path, "w").write("data")
        refused = daemon.cli("cp", path, f"{name}:/etc/")
        assert refused.returncode == 1
        assert "container rootfs is marked read-only" in refused.stderr.decode()
        ok(daemon.cli("cp", path, f"{name}:/scratch/"))
        assert ok(daemon.cli("exec", name, "cat", "/scratch/f")) == "data"
    finally:
        daemon.cli("rm", "-f", name)


def test_events_name_the_copies(daemon, running, workdir):
    import time

    since = time.time() - 1
    ok(daemon.cli("cp", f"{running}:/etc/passwd", workdir))
    ok(daemon.cli("cp", os.path.join(workdir, "passwd"), f"{running}:/tmp/"))
    events = daemon.client().api.events(since=since, until=time.time() + 0.5, decode=True,
                                        filters={"container": running})
    actions = [e["Action"] for e in events]
    assert "archive-path" in actions and "extract-to-dir" in actions


def test_docker_cli_cp(daemon, running, workdir):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    env.pop("DOCKER_CONTEXT", None)

    def run(*args):
        return subprocess.run([docker, *args], env=env, capture_output=True, timeout=60)

    src = os.path.join(workdir, "d")
    os.makedirs(src)
    open(os.path.join(src, "x"), "w").write("from docker\n")
    ok(run("cp", src, f"{running}:/tmp/"))
    assert ok(daemon.cli("exec", running, "cat", "/tmp/d/x")) == "from docker\n"
    ok(run("cp", f"{running}:/tmp/d/.", os.path.join(workdir, "copy")))
    assert open(os.path.join(workdir, "copy", "x")).read() == "from docker\n"
    missing = run("cp", f"{running}:/nope", workdir)
    assert b"Could not find the file /nope" in missing.stderr


def test_a_stopped_container_does_not_start_while_cp_reads_it(daemon):
    """cp of a stopped container mounts its rootfs: a start waits for it to finish, and a
    client that goes away mid-archive leaves no helper behind."""
    import socket
    import threading
    import time

    name = "cp-lock-" + uuid.uuid4().hex[:6]
    ok(daemon.cli("create", "--name", name, "busybox", "sh", "-c", "echo started"))
    try:
        cid = daemon.client().api.inspect_container(name)["Id"]
        # An archive of the whole rootfs, read slowly: the helper keeps it mounted meanwhile.
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon.sock)
        s.sendall(f"GET /v1.45/containers/{cid}/archive?path=/ HTTP/1.1\r\nHost: x\r\n\r\n"
                  .encode())
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        started = []
        starter = threading.Thread(
            target=lambda: started.append(daemon.cli("start", "-a", name)), daemon=True)
        starter.start()
        time.sleep(0.5)
        assert not started                     # waiting for cp's helper to finish
        s.close()                              # the client goes away: the helper is killed
        starter.join(30)
        assert started and started[0].stdout == b"started\n", started
    finally:
        daemon.cli("rm", "-f", name)
