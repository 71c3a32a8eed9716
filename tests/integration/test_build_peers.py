"""The same Dockerfile built by skiff and by docker's classic builder (a private dockerd, as
bench/run.py starts it): the same config, the same history, the same files; and skiff's image,
saved, runs unchanged in docker and podman. Skipped where a peer is absent."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest

pytestmark = [pytest.mark.root, pytest.mark.needs_docker]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DOCKERFILE = """FROM busybox
ARG VERSION=3
ENV APP=/app NAME="the app"
LABEL org.example.version=$VERSION maintainer="someone"
WORKDIR $APP
COPY files/ ./
COPY --chown=nobody:nogroup files/a.txt /owned/a.txt
ADD archive.tar /unpacked/
RUN echo "v$VERSION" > /app/version && mkdir -p /data && rm /etc/group
EXPOSE 8080 53/udp
VOLUME /data
USER nobody
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=2 CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/version"]
"""
CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts",
               "Volumes", "StopSignal", "Healthcheck", "OnBuild", "Shell")
PROBE = "cat /app/version; ls /app /unpacked; stat -c '%U:%G %a %s' /owned/a.txt; " \
        "test -e /etc/group && echo group || echo no-group"


def _peers():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        from run import Docker, Podman
    finally:
        sys.path.pop(0)
    return Docker, Podman


@pytest.fixture(scope="module")
def context():
    path = tempfile.mkdtemp(prefix="skiff-build-peers-")
    os.makedirs(os.path.join(path, "files", "sub"))
    for name, data in (("files/a.txt", "a\n"), ("files/sub/b.txt", "b\n")):
        with open(os.path.join(path, name), "w") as f:
            f.write(data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("inside/t.txt")
        info.size, info.mode, info.mtime = 2, 0o600, 1_600_000_000
        tar.addfile(info, io.BytesIO(b"t\n"))
    with open(os.path.join(path, "archive.tar"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _files(save_tar: bytes) -> dict:
    """path -> (type, mode, uid, gid, size, content) over all layers of a `save` archive,
    whiteouts applied: what a container of the image sees."""
    import json

    outer = tarfile.open(fileobj=io.BytesIO(save_tar))
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    seen: dict = {}
    for layer in manifest["Layers"]:
        with tarfile.open(fileobj=outer.extractfile(layer)) as tar:
            for m in tar:
                name = m.name.rstrip("/")
                base = os.path.basename(name)
                if base == ".wh..wh..opq":
                    prefix = os.path.dirname(name) + "/"
                    seen = {k: v for k, v in seen.items() if not k.startswith(prefix)}
                    continue
                if base.startswith(".wh."):
                    gone = os.path.join(os.path.dirname(name), base[4:])
                    seen = {k: v for k, v in seen.items()
                            if k != gone and not k.startswith(gone + "/")}
                    continue
                data = tar.extractfile(m).read() if m.isfile() else b""
                # (docker's tars carry the type bits in the mode field too; skiff's do not)
                seen[name] = (m.type, m.mode & 0o7777, m.uid, m.gid, m.size, data, m.linkname)
    return seen


def test_same_image_as_docker_classic_builder(daemon, context):
    Docker, Podman = _peers()
    if not Docker.available():
        pytest.skip("docker is not installed")
    result = daemon.cli("build", "-t", "peer-build:1", context)
    assert result.returncode == 0, result.stderr.decode()
    client = daemon.client()
    ours = client.api.inspect_image("peer-build:1")
    ours_history = client.api.history("peer-build:1")
    saved = os.path.join(daemon.dir, "peer-build.tar")
    assert daemon.cli("save", "-o", saved, "peer-build:1").returncode == 0
    with open(saved, "rb") as f:
        ours_files = _files(f.read())
    with Docker() as engine:
        env = dict(os.environ, DOCKER_BUILDKIT="0")

        def docker(*args, **kw):
            return subprocess.run(engine.cli + list(args), env=env, capture_output=True,
                                  timeout=180, **kw)

        built = docker("build", "--network", "none", "-t", "peer-build:docker", context)
        assert built.returncode == 0, built.stderr.decode()
        theirs = json.loads(docker("image", "inspect", "peer-build:docker").stdout)[0]
        theirs_history = [line for line in docker(
            "history", "--no-trunc", "--format", "{{.CreatedBy}}",
            "peer-build:docker").stdout.decode().splitlines()]
        saved_docker = docker("save", "peer-build:docker").stdout
        theirs_files = _files(saved_docker)
        # skiff's own CLI builds on dockerd too (the classic protocol, whole context)
        by_cli = subprocess.run(
            [sys.executable, "-m", "skiff.cli.main", "-H", f"unix://{engine.sock}", "build",
             "-q", "-t", "peer-build:skiff-cli", context], capture_output=True, timeout=180,
            env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src")))
        assert by_cli.returncode == 0, by_cli.stderr.decode()
        assert by_cli.stdout.decode().strip() == json.loads(docker(
            "image", "inspect", "peer-build:skiff-cli").stdout)[0]["Id"]
        # skiff's image, saved, loads and runs in docker as in skiff
        assert docker("load", "-i", saved).returncode == 0
        out_docker = docker("run", "--rm", "--network", "none", "peer-build:1", PROBE)
        assert out_docker.returncode == 0, out_docker.stderr
    for key in CONFIG_KEYS:
        assert (ours["Config"].get(key) or None) == (theirs["Config"].get(key) or None), key
    # the same history text; the content hashes of COPY/ADD are each builder's own
    hashes = re.compile(r"(file|dir|multi):[0-9a-f]{64}")
    assert [hashes.sub(r"\1:H", h["CreatedBy"]) for h in ours_history] == \
        [hashes.sub(r"\1:H", h) for h in theirs_history]
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])
    # the same files, owners, modes and contents (mtimes of what RUN made differ)
    ours_view = {k: v[:2] + v[2:6] + v[6:] for k, v in ours_files.items()}
    theirs_view = {k: v[:2] + v[2:6] + v[6:] for k, v in theirs_files.items()}
    assert sorted(ours_view) == sorted(theirs_view)
    for path in ours_view:
        if path in ("app/version",) or path.startswith("etc/"):
            assert ours_view[path][5] == theirs_view[path][5], path
        else:
            assert ours_view[path] == theirs_view[path], path
    out = client.containers.run("peer-build:1", [PROBE], remove=True)
    assert out == out_docker.stdout
    if Podman.available():
        with Podman() as engine:
            def podman(*args):
                return subprocess.run(engine.cli + list(args), env=engine.env,
                                      capture_output=True, timeout=180)

            assert podman("load", "-i", saved).returncode == 0
            out_podman = podman("run", "--rm", "--network", "none", "peer-build:1", PROBE)
            assert out_podman.returncode == 0, out_podman.stderr
            assert out_podman.stdout == out
    os.unlink(saved)
