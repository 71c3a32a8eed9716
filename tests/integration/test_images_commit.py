"""diff, export and commit through skiffd: the Docker SDK, the docker CLI and the skiff CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

pytestmark = [pytest.mark.root]

SCRIPT = ("echo hi > /tmp/x; rm /etc/group; mkdir -p /a/b; echo deep > /a/b/c; "
          "ln /tmp/x /tmp/x2; ln -s /tmp/x /tmp/sym")


@pytest.fixture(scope="module")
def changed(daemon):
    """A stopped container that added, changed and deleted files."""
    client = daemon.client()
    container = client.containers.run("busybox", ["sh", "-c", SCRIPT], detach=True)
    container.wait(timeout=30)
    try:
        yield container
    finally:
        container.remove(force=True)


def test_diff_lists_changes_as_docker(daemon, changed):
    found = changed.diff()
    assert {"Kind": 1, "Path": "/tmp/x"} in found
    assert {"Kind": 2, "Path": "/etc/group"} in found
    assert {"Kind": 0, "Path": "/etc"} in found
    assert {"Kind": 1, "Path": "/a/b/c"} in found
    paths = [c["Path"] for c in found]
    # the runtime's mount points are not the container's changes
    assert "/etc/hosts" not in paths and "/etc/resolv.conf" not in paths
    assert paths.index("/a") < paths.index("/a/b") < paths.index("/a/b/c")
    cli = daemon.cli("diff", changed.name)
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.decode().splitlines()
    assert "D /etc/group" in lines and "A /tmp/x" in lines and "C /etc" in lines


def test_export_is_the_merged_rootfs(daemon, changed):
    data = b"".join(changed.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert "bin/busybox" in names and "tmp/x" in names and "a/b/c" in names
        assert "etc/group" not in names and "etc/passwd" in names
        assert not any(os.path.basename(n).startswith(".wh.") for n in names)
        assert tar.extractfile("tmp/x").read() == b"hi\n"
        assert tar.getmember("tmp/x2").islnk() and tar.getmember("tmp/x2").linkname == "tmp/x"
        assert tar.getmember("tmp/sym").issym()
    out = os.path.join(daemon.dir, "export.tar")
    cli = daemon.cli("export", "-o", out, changed.name)
    assert cli.returncode == 0, cli.stderr
    with tarfile.open(out) as tar:
        assert "tmp/x" in tar.getnames()
    os.unlink(out)
    missing = daemon.cli("export", "-o", out, "nosuchcontainer")
    assert missing.returncode == 1 and b"No such container: nosuchcontainer" in missing.stderr
    assert not os.path.exists(out)


def test_commit_makes_a_runnable_image(daemon, changed):
    client = daemon.client()
    image = changed.commit(repository="committed", tag="v1", message="a message",
                           author="Ann <ann@example.com>",
                           changes=['CMD ["cat", "/a/b/c"]', "ENV GREETING=hello",
                                    "WORKDIR /a", "LABEL team=images"])
    try:
        attrs = client.images.get("committed:v1").attrs
        assert attrs["Id"] == image.id
        assert attrs["Config"]["Cmd"] == ["cat", "/a/b/c"]
        assert "GREETING=hello" in attrs["Config"]["Env"]
        assert attrs["Config"]["WorkingDir"] == "/a"
        assert attrs["Config"]["Labels"] == {"team": "images"}
        assert attrs["Author"] == "Ann <ann@example.com>"
        base = client.images.get("busybox").attrs
        assert attrs["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
        assert len(attrs["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1
        assert client.containers.run("committed:v1", remove=True) == b"deep\n"
        probe = ("pwd; cat /tmp/x; test -e /etc/group || echo gone; "
                 "stat -c %h /tmp/x; readlink /tmp/sym; echo $GREETING")
        out = client.containers.run("committed:v1", ["sh", "-c", probe], remove=True)
        assert out.decode().split() == ["/a", "hi", "gone", "2", "/tmp/x", "hello"]
        # a container of the new image starts with no changes of its own
        fresh = client.containers.run("committed:v1", ["true"], detach=True)
        fresh.wait(timeout=30)
        assert fresh.diff() == []
        fresh.remove()
    finally:
        client.images.remove("committed:v1")


def test_commit_layer_uses_oci_whiteouts(daemon, changed):
    client = daemon.client()
    image = changed.commit()  # untagged
    try:
        layer_diff = client.images.get(image.id).attrs["RootFS"]["Layers"][-1]
        blob = os.path.join(daemon.root, "content", "blobs", "sha256",
                            layer_diff.split(":")[1])
        with tarfile.open(blob) as tar:
            names = tar.getnames()
        assert "etc/.wh.group" in names
        assert "etc/hosts" not in names and "etc/hostname" not in names
        assert "tmp/x" in names and "a/b/c" in names
    finally:
        client.images.remove(image.id)


def test_commit_errors(daemon, changed):
    bad = daemon.cli("commit", "nosuchcontainer")
    assert bad.returncode == 1 and b"No such container: nosuchcontainer" in bad.stderr
    bad = daemon.cli("commit", "-c", "FROM scratch", changed.name, "x:1")
    assert bad.returncode == 1 and b"FROM is not a valid change command" in bad.stderr
    bad = daemon.cli("commit", changed.name, "Upper:case")
    assert bad.returncode == 1
    images = daemon.client().images.list(all=True)
    assert not any("x:1" in (i.attrs.get("RepoTags") or []) for i in images)


def test_cli_commit_of_running_container_pauses_it(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "echo x > /tmp/r; sleep 60"], detach=True)
    try:
        for _ in range(100):
            if c.diff():
                break
        result = daemon.cli("commit", "-m", "live", c.name, "live:1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().startswith("sha256:")
        c.reload()
        assert c.status == "running"
        out = client.containers.run("live:1", ["cat", "/tmp/r"], remove=True)
        assert out == b"x\n"
    finally:
        c.remove(force=True)
        client.images.remove("live:1")


def test_docker_cli_diff_commit_export(daemon, changed):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    env.pop("DOCKER_CONTEXT", None)

    def run(*args):
        return subprocess.run([docker, *args], env=env, capture_output=True, timeout=60)

    diff = run("diff", changed.name)
    assert diff.returncode == 0, diff.stderr
    assert "D /etc/group" in diff.stdout.decode().splitlines()
    commit = run("commit", "--change", "CMD [\"cat\", \"/tmp/x\"]", changed.name, "fromdocker")
    assert commit.returncode == 0, commit.stderr
    try:
        assert run("run", "--rm", "fromdocker").stdout == b"hi\n"
        inspect = json.loads(run("image", "inspect", "fromdocker").stdout)
        assert inspect[0]["Config"]["Cmd"] == ["cat", "/tmp/x"]
    finally:
        run("rmi", "fromdocker")
    export = run("export", changed.name)
    assert export.returncode == 0, export.stderr
    with tarfile.open(fileobj=io.BytesIO(export.stdout)) as tar:
        assert "tmp/x" in tar.getnames()


def test_commit_snapshot_is_made_when_first_needed(daemon):
    """A commit writes its layer once (the blob); the snapshot is unpacked by the first
    container of the image, once for two at the same time, and every size docker shows is the
    same before and after."""
    import threading

    client = daemon.client()
    writer = client.containers.run(
        "busybox", ["sh", "-c", "mkdir /d; head -c 300000 /dev/urandom > /d/a; "
                    "echo hi > /d/b; ln /d/a /d/c; rm /etc/group"], detach=True)
    writer.wait(timeout=30)
    image = writer.commit(repository="lazy", tag="v1")
    try:
        attrs = client.images.get(image.id).attrs
        chain = client.api.inspect_image("busybox")["RootFS"]["Layers"]
        top = os.path.join(daemon.root, "snapshots")
        made_before = set(os.listdir(top))

        def sizes():
            df = client.df()
            row = next(i for i in df["Images"] if i["Id"] == image.id)
            hist = client.api.history(image.id)
            return (client.images.get(image.id).attrs["Size"], row["Size"],
                    sum(h["Size"] for h in hist), hist[0]["Size"], df["LayersSize"])

        before = sizes()
        assert before[0] == attrs["Size"] == before[1] == before[2]
        assert before[3] == 300000 + 3   # the new layer: /d/a once (hard linked), /d/b
        results, errors = [], []

        def run():
            try:
                results.append(client.containers.run("lazy:v1", ["sh", "-c", "cat /d/b; "
                                                                 "stat -c %h /d/a; test -e "
                                                                 "/etc/group || echo gone"],
                                                     remove=True))
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and results == [b"hi\n2\ngone\n"] * 2
        made = set(os.listdir(top)) - made_before
        assert len(made) == 1 and not any(n.startswith(".tmp-") for n in os.listdir(top))
        assert sizes() == before
        assert len(chain) + 1 == len(attrs["RootFS"]["Layers"])
    finally:
        client.images.remove("lazy:v1")
        writer.remove()
