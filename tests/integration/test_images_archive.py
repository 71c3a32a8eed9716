"""save, tag, history, import, image filters and prune through skiffd: the Docker SDK, the
docker CLI and the skiff CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

pytestmark = [pytest.mark.root]


def _fs_tarball(files: dict[str, bytes]) -> bytes:
    """A filesystem tarball with busybox's binary, for import."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add("/bin/busybox", "bin/busybox")
        for applet in ("sh", "cat"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _ids(client) -> set[str]:
    return {i.id for i in client.images.list(all=True)}


def test_tag_and_history(daemon):
    client = daemon.client()
    busybox = client.images.get("busybox")
    assert busybox.tag("example.com/team/tool", "v1")
    assert client.images.get("example.com/team/tool:v1").id == busybox.id
    cli = daemon.cli("tag", "busybox", "other:2")
    assert cli.returncode == 0, cli.stderr
    assert "other:2" in client.images.get("busybox").tags
    bad = daemon.cli("tag", "nosuchimage", "x:1")
    assert bad.returncode == 1 and b"No such image: nosuchimage:latest" in bad.stderr
    bad = daemon.cli("tag", "busybox", "Bad:Name")
    assert bad.returncode == 1
    history = client.api.history("busybox")
    assert history[0]["Id"] == busybox.id and "busybox:latest" in history[0]["Tags"]
    assert sum(h["Size"] for h in history) == busybox.attrs["Size"]
    out = daemon.cli("history", "busybox")
    assert out.returncode == 0 and out.stdout.decode().startswith("IMAGE")
    for name in ("example.com/team/tool:v1", "other:2"):
        client.images.remove(name)
    assert client.images.get("busybox").tags == ["busybox:latest"]


def test_save_and_load_round_trip(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "echo saved > /saved"], detach=True)
    c.wait(timeout=30)
    image = c.commit("roundtrip", "v1", changes=['CMD ["cat", "/saved"]'])
    c.remove()
    client.images.get("busybox").tag("bb2", "latest")
    api = client.api  # the SDK saves one image per call: ask for two as the docker CLI does
    resp = api._get(api._url("/images/get"), params={"names": ["roundtrip:v1", "bb2"]},
                    stream=True)
    api._raise_for_status(resp)
    data = resp.content
    assert b"".join(client.images.get("bb2").save()).startswith(b"oci-layout")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        index = json.load(tar.extractfile("index.json"))
        names = tar.getnames()
    tags = sorted(t for e in manifest for t in e["RepoTags"])
    assert tags == ["bb2:latest", "roundtrip:v1"]
    assert len(index["manifests"]) == 2 and "oci-layout" in names
    assert len(set(names)) == len(names)  # the shared base layer is written once
    client.images.remove("roundtrip:v1")
    client.images.remove("bb2")
    assert image.id not in _ids(client)
    loaded = client.images.load(data)
    assert {i.id for i in loaded} >= {image.id}
    assert client.containers.run("roundtrip:v1", remove=True) == b"saved\n"
    client.images.remove("bb2")
    # by the skiff CLI, to a file
    out = os.path.join(daemon.dir, "saved.tar")
    result = daemon.cli("save", "-o", out, "roundtrip:v1")
    assert result.returncode == 0, result.stderr
    client.images.remove("roundtrip:v1")
    result = daemon.cli("load", "-i", out)
    assert result.returncode == 0 and b"Loaded image: roundtrip:v1" in result.stdout
    missing = daemon.cli("save", "-o", out + ".2", "nosuchimage")
    assert missing.returncode == 1 and b"No such image: nosuchimage:latest" in missing.stderr
    assert not os.path.exists(out + ".2")
    os.unlink(out)
    client.images.remove("roundtrip:v1")


def test_docker_cli_save_load(daemon):
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    env.pop("DOCKER_CONTEXT", None)
    out = os.path.join(daemon.dir, "docker-saved.tar")

    def run(*args):
        return subprocess.run([docker, *args], env=env, capture_output=True, timeout=60)

    assert run("tag", "busybox", "viadocker:1").returncode == 0
    saved = run("save", "-o", out, "viadocker:1")
    assert saved.returncode == 0, saved.stderr
    assert run("rmi", "viadocker:1").returncode == 0
    loaded = run("load", "-i", out)
    assert loaded.returncode == 0, loaded.stderr
    assert run("run", "--rm", "viadocker:1", "echo", "ok").stdout == b"ok\n"
    hist = run("history", "viadocker:1")
    assert hist.returncode == 0 and b"IMAGE" in hist.stdout
    assert run("rmi", "viadocker:1").returncode == 0
    os.unlink(out)


def test_import_with_changes(daemon):
    client = daemon.client()
    data = _fs_tarball({"etc/motd": b"imported\n"})
    result = client.api.import_image_from_data(data, repository="imported", tag="v1",
                                               changes=['CMD ["/bin/cat", "/etc/motd"]',
                                                        "ENV X=1", "WORKDIR /etc"])
    assert "sha256:" in str(result)
    attrs = client.images.get("imported:v1").attrs
    assert attrs["Config"]["Cmd"] == ["/bin/cat", "/etc/motd"] and attrs["Config"]["Env"] == ["X=1"]
    assert client.containers.run("imported:v1", remove=True) == b"imported\n"
    # the skiff CLI from a file and from stdin
    path = os.path.join(daemon.dir, "fs.tar.gz")
    with open(path, "wb") as f:
        f.write(data)
    cli = daemon.cli("import", "-m", "from a file", path, "imported:v2")
    assert cli.returncode == 0 and cli.stdout.startswith(b"sha256:"), cli.stderr
    assert client.images.get("imported:v2").attrs["Comment"] == "from a file"
    cli = daemon.cli("import", "-", "imported:v3", input=data)
    assert cli.returncode == 0, cli.stderr
    bad = daemon.cli("import", "-c", "RUN true", path, "imported:v4")
    assert bad.returncode == 1 and b"RUN is not a valid change command" in bad.stderr
    before = _ids(client)
    bad = daemon.cli("import", "-", "imported:v5", input=b"not a tarball" * 100)
    assert bad.returncode == 1
    assert _ids(client) == before
    os.unlink(path)
    for tag in ("v1", "v2", "v3"):
        client.images.remove(f"imported:{tag}")


def test_import_from_a_url(daemon, tmp_path):
    """The daemon downloads the tarball (a server on loopback only), with docker's progress;
    a missing file is a clear error and leaves nothing."""
    import http.server
    import threading

    data = _fs_tarball({"etc/motd": b"from a url\n"})
    (tmp_path / "fs.tar.gz").write_bytes(data)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path), **kw)
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = daemon.client()
    try:
        result = daemon.cli("import", "-c", 'CMD ["/bin/cat", "/etc/motd"]', f"{url}/fs.tar.gz",
                            "fromurl:v1")
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().splitlines()[-1].startswith("sha256:")
        assert f"Downloading from {url}/fs.tar.gz".encode() in result.stdout
        assert client.containers.run("fromurl:v1", remove=True) == b"from a url\n"
        # the Docker SDK's way (fromSrc=URL)
        lines = client.api.import_image_from_url(f"{url}/fs.tar.gz", repository="fromurl",
                                                 tag="v2")
        assert "sha256:" in lines
        assert client.images.get("fromurl:v2").attrs["RootFS"]["Layers"] == \
            client.images.get("fromurl:v1").attrs["RootFS"]["Layers"]
        before = _ids(client)
        missing = daemon.cli("import", f"{url}/nosuch.tar", "fromurl:v3")
        assert missing.returncode == 1
        assert b"failed to GET" in missing.stderr and b"404" in missing.stderr
        assert _ids(client) == before
        bad = client.api._post(client.api._url("/images/create"),
                               params={"fromSrc": "ftp://127.0.0.1/x.tar"})
        assert bad.status_code == 400
    finally:
        server.shutdown()
        server.server_close()
        for tag in ("v1", "v2"):
            try:
                client.images.remove(f"fromurl:{tag}")
            except Exception:
                pass


def test_image_filters(daemon):
    client = daemon.client()
    data = _fs_tarball({})
    client.api.import_image_from_data(data, repository="labelled", tag="1",
                                      changes=["LABEL tier=web"])
    dangling = client.api.import_image_from_data(_fs_tarball({"x": b"1"}))
    dangling_id = json.loads(dangling)["status"] if dangling.startswith("{") else dangling
    try:
        names = lambda imgs: sorted(t for i in imgs for t in i.tags)  # noqa: E731
        assert names(client.images.list(filters={"label": "tier=web"})) == ["labelled:1"]
        assert names(client.images.list(filters={"reference": "label*"})) == ["labelled:1"]
        assert names(client.images.list(name="busybox")) == ["busybox:latest"]
        assert [i.tags for i in client.images.list(filters={"dangling": True})] == [[]]
        since = client.images.list(filters={"since": "busybox"})
        assert "labelled:1" in names(since) and "busybox:latest" not in names(since)
        cli = daemon.cli("images", "-q", "-f", "dangling=true")
        assert cli.returncode == 0 and len(cli.stdout.split()) == 1
        bad = daemon.cli("images", "-f", "nosuch=1")
        assert bad.returncode == 1
    finally:
        client.images.remove("labelled:1")
        client.api.prune_images(filters={"dangling": True})
    assert not client.images.list(filters={"dangling": True})
    assert dangling_id


def test_prune_keeps_what_containers_use(daemon):
    client = daemon.client()
    client.api.import_image_from_data(_fs_tarball({"p": b"1"}), repository="prunable",
                                      tag="1")
    keeper = client.containers.create("busybox", ["true"])
    try:
        result = daemon.cli("image", "prune", "-a", "-f")
        assert result.returncode == 0, result.stderr
        text = result.stdout.decode()
        assert "untagged: prunable:1" in text and "Total reclaimed space:" in text
        tags = {t for i in client.images.list() for t in i.tags}
        assert "busybox:latest" in tags and "prunable:1" not in tags
    finally:
        keeper.remove()


def test_system_df(daemon):
    client = daemon.client()
    c = client.containers.run("busybox", ["sh", "-c", "head -c 5000 /dev/zero > /f"],
                              detach=True)
    try:
        c.wait(timeout=30)
        df = client.df()
        busybox = client.images.get("busybox")
        row = next(i for i in df["Images"] if i["Id"] == busybox.id)
        assert row["Containers"] >= 1 and df["LayersSize"] >= busybox.attrs["Size"]
        mine = next(x for x in df["Containers"] if x["Id"] == c.id)
        assert 5000 <= mine["SizeRw"] < 64 * 1024
        assert mine["SizeRootFs"] == mine["SizeRw"] + busybox.attrs["Size"]
        cli = daemon.cli("system", "df")
        assert cli.returncode == 0, cli.stderr
        lines = cli.stdout.decode().splitlines()
        assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        assert lines[1].startswith("Images") and lines[2].startswith("Containers")
    finally:
        c.remove()
