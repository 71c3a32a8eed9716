"""The real docker CLI as a client of skiffd's volumes and mounts (skipped without one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

pytestmark = [pytest.mark.root, pytest.mark.needs_docker]


@pytest.fixture(scope="module")
def docker(daemon):
    path = shutil.which("docker")
    if not path:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host)
    env.pop("DOCKER_CONTEXT", None)

    def run(*args, **kw):
        result = subprocess.run([path, *args], env=env, capture_output=True, timeout=60, **kw)
        return result.returncode, result.stdout.decode(), result.stderr.decode()
    return run


def test_volume_commands(docker, daemon):
    name = "dv-" + uuid.uuid4().hex[:8]
    assert docker("volume", "create", "--label", "x=y", name) == (0, f"{name}\n", "")
    status, out, err = docker("volume", "ls", "--filter", f"name={name}")
    assert status == 0, err
    assert out.split() == ["DRIVER", "VOLUME", "NAME", "local", name]
    status, out, _ = docker("volume", "inspect", name)
    [doc] = json.loads(out)
    assert doc["Mountpoint"] == os.path.join(daemon.root, "volumes", name, "_data")
    assert doc["Labels"] == {"x": "y"}
    status, out, err = docker("run", "--rm", "-v", f"{name}:/data", "busybox", "sh", "-c",
                              "echo persisted > /data/f")
    assert status == 0, err
    assert docker("run", "--rm", "-v", f"{name}:/data:ro", "busybox", "cat", "/data/f")[1] == \
        "persisted\n"
    status, _, err = docker("run", "--rm", "-v", f"{name}:/data:ro", "busybox", "touch",
                            "/data/g")
    assert status == 1 and "Read-only file system" in err
    status, out, err = docker("system", "df", "-v")
    assert status == 0, err
    assert any(line.split()[:2] == [name, "0"] for line in out.splitlines() if line.strip())
    assert docker("volume", "rm", name) == (0, f"{name}\n", "")
    status, _, err = docker("volume", "inspect", name)
    assert status == 1 and "no such volume" in err.lower()
    assert not os.path.exists(os.path.join(daemon.root, "volumes", name))


def test_run_with_binds_mounts_and_volumes_from(docker):
    host = tempfile.mkdtemp(prefix="skiff-dcli-", dir="/var/tmp")
    name = "dv-" + uuid.uuid4().hex[:8]
    try:
        with open(os.path.join(host, "in"), "w") as f:
            f.write("from host\n")
        status, out, err = docker("run", "--name", name, "-v", f"{host}:/h",
                                  "--mount", f"type=volume,src={name},dst=/v",
                                  "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
                                  "busybox", "sh", "-c", "cat /h/in; echo out > /h/out; "
                                  "echo vol > /v/f")
        assert (status, out) == (0, "from host\n"), err
        with open(os.path.join(host, "out")) as f:
            assert f.read() == "out\n"
        status, out, _ = docker("inspect", "-f", "{{json .Mounts}}", name)
        mounts = {m["Destination"]: m for m in json.loads(out)}
        assert mounts["/h"]["Type"] == "bind" and mounts["/h"]["Source"] == host
        assert mounts["/v"]["Type"] == "volume" and mounts["/v"]["Name"] == name
        assert mounts["/t"]["Type"] == "tmpfs"
        status, out, err = docker("run", "--rm", "--volumes-from", f"{name}:ro", "busybox",
                                  "cat", "/v/f", "/h/in")
        assert (status, out) == (0, "vol\nfrom host\n"), err
        status, _, err = docker("volume", "rm", name)
        assert status == 1 and "volume is in use" in err
        status, _, err = docker("run", "--rm", "-v", "foo/bar:/x", "busybox", "true")
        assert status == 125 and "includes invalid characters for a local volume name" in err
        status, _, err = docker("run", "--rm", "--mount", "type=bind,src=/nonexistent-x,dst=/x",
                                "busybox", "true")
        assert status == 125 and "bind source path does not exist: /nonexistent-x" in err
    finally:
        docker("rm", "-f", "-v", name)
        docker("volume", "rm", "-f", name)
        shutil.rmtree(host, ignore_errors=True)


def test_anonymous_volume_rm_v(docker):
    name = "dv-" + uuid.uuid4().hex[:8]
    status, _, err = docker("create", "--name", name, "-v", "/anon", "busybox", "true")
    assert status == 0, err
    status, out, _ = docker("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", name)
    anon = out.strip()
    assert len(anon) == 64
    assert docker("volume", "ls", "-q")[1].split().count(anon) == 1
    assert docker("rm", "-v", name)[0] == 0
    assert anon not in docker("volume", "ls", "-q")[1].split()


def test_volume_prune(docker):
    name = "dv-" + uuid.uuid4().hex[:8]
    label = f"prune-{name}"
    assert docker("volume", "create", "--label", label, name)[0] == 0
    status, _, err = docker("create", "--label", label, "-v", "/anon", "busybox", "true")
    assert status == 0, err
    status, out, _ = docker("ps", "-aq", "--filter", f"label={label}")
    container = out.strip()
    anon = docker("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", container)[1].strip()
    assert docker("rm", container)[0] == 0          # without -v: the volume stays, unused
    status, out, err = docker("volume", "prune", "-f")
    assert status == 0, err
    assert anon in out and name not in out           # anonymous only (API >= 1.42)
    assert "Total reclaimed space:" in out
    status, out, err = docker("volume", "prune", "-a", "-f", "--filter", f"label={label}")
    assert status == 0, err
    assert name in out
    assert name not in docker("volume", "ls", "-q")[1].split()
    status, out, _ = docker("inspect", "--type", "volume", name)
    assert status == 1
