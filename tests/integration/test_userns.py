"""User namespaces: a daemon with `userns-remap: default` (the user dockremap and its
/etc/subuid, /etc/subgid ranges, made if missing as dockerd makes them) runs containers whose
root is an unprivileged id on the host, with skiff's own runtime and with runc;
`--userns=host` opts out."""

import json
import os
import pwd
import shutil
import subprocess

import pytest

from tests.integration.conftest import mounts_under, private_daemon

pytestmark = [pytest.mark.root]


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


@pytest.fixture(params=["skiff", "runc"])
def runtime(request):
    if request.param != "skiff" and not shutil.which(request.param):
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(scope="module")
def remapped(test_images):
    if os.geteuid() != 0:
        pytest.skip("skiffd needs root")
    try:
        pwd.getpwnam("dockremap")
        made_user = False
    except KeyError:
        made_user = True
    subuid, subgid = _read("/etc/subuid"), _read("/etc/subgid")
    try:
        # 0711: the remapped root walks through it to its bundle, as with docker
        with private_daemon(test_images, "skiff-userns-", ["--userns-remap", "default"],
                            mode=0o711) as d:
            yield d
    finally:
        if made_user:   # leave the machine as we found it
            subprocess.run(["userdel", "dockremap"], capture_output=True)
            subprocess.run(["groupdel", "dockremap"], capture_output=True)
            for path, text in (("/etc/subuid", subuid), ("/etc/subgid", subgid)):
                if text is None:
                    os.unlink(path)
                else:
                    with open(path, "w") as f:
                        f.write(text)


def _root_ids():
    user = pwd.getpwnam("dockremap")

    def first(path, name, number):
        for line in open(path):
            who, start, count = line.strip().split(":")
            if who in (name, str(number)):
                return int(start)
        raise AssertionError(f"no range for dockremap in {path}")
    return (first("/etc/subuid", "dockremap", user.pw_uid),
            first("/etc/subgid", "dockremap", user.pw_gid))


def test_dockremap_is_made_with_ranges(remapped):
    uid, gid = _root_ids()
    assert uid >= 100000 and gid >= 100000


def test_container_root_is_not_root_on_the_host(remapped, runtime, tmp_path):
    uid, gid = _root_ids()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    secret = tmp_path / "secret"
    secret.write_text("host root only\n")
    os.chmod(secret, 0o600)
    client = remapped.client()
    container = client.containers.run(
        "busybox", ["sleep", "300"], detach=True, runtime=runtime,
        volumes={str(shared): {"bind": "/shared", "mode": "rw"},
                 str(secret): {"bind": "/secret", "mode": "ro"}})
    try:
        pid = client.api.inspect_container(container.id)["State"]["Pid"]
        status = open(f"/proc/{pid}/status").read()
        assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
        assert f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}" in status
        code, out = container.exec_run(["sh", "-c", "id -u; cat /proc/self/uid_map"])
        assert code == 0
        assert out.split()[:4] == [b"0", b"0", str(uid).encode(), b"65536"]
        # a file container root creates in a bind mount belongs to the mapped uid
        code, _ = container.exec_run(["touch", "/shared/made-inside"])
        assert code == 0
        st = os.stat(shared / "made-inside")
        assert (st.st_uid, st.st_gid) == (uid, gid)
        # root inside cannot read what only host root may
        code, out = container.exec_run(["cat", "/secret"])
        assert code != 0 and b"Permission denied" in out
        # nor do root-only things of the host
        code, out = container.exec_run(["sh", "-c", "echo 1 > /proc/sys/kernel/panic"])
        assert code != 0
    finally:
        container.remove(force=True)


def test_image_files_are_the_containers_and_layers_stay_intact(remapped, runtime):
    client = remapped.client()
    container = client.containers.run(
        "busybox", ["sh", "-c", "ls -ln /bin/busybox; echo x > /etc/hosts && echo hosts-ok; "
                                "rm /bin/ls && echo rm-ok; mkdir /made && ls -lnd /made"],
        detach=True, runtime=runtime)
    try:
        assert container.wait(timeout=30)["StatusCode"] == 0
        out = container.logs().decode()
        assert " 0        0 " in out.splitlines()[0]   # image files: root's, inside
        assert "hosts-ok" in out and "rm-ok" in out
    finally:
        container.remove(force=True)
    # the layer below is untouched (idmapped mounts are read-only), nothing is left mounted
    layers = os.path.join(remapped.root, "snapshots")
    found = [os.path.join(d, "bin", "ls") for d in
             (os.path.join(layers, n, "fs") for n in os.listdir(layers))
             if os.path.exists(os.path.join(d, "bin", "busybox"))]
    assert found and all(os.path.lexists(p) for p in found)
    assert all(os.stat(p, follow_symlinks=False).st_uid == 0 for p in found)
    assert not [m for m in mounts_under(remapped.dir) if "/containers/" in m or "/layers/" in m]


def test_userns_host_opts_out_and_bad_settings_are_refused(remapped):
    import docker

    client = remapped.client()
    out = client.containers.run("busybox", ["cat", "/proc/self/uid_map"], userns_mode="host",
                                remove=True)
    assert out.split() == [b"0", b"0", b"4294967295"]
    cases = [({"Privileged": True}, "privileged mode is incompatible with user namespaces"),
             ({"UsernsMode": "bogus"}, "invalid USER mode: bogus"),
             ({"PidMode": "host"}, "Cannot share the host's PID namespace")]
    for host_config, message in cases:
        with pytest.raises(docker.errors.APIError) as info:
            client.api.create_container("busybox", ["true"], host_config=host_config)
        assert info.value.status_code == 400, host_config
        assert message in str(info.value)


def test_cli_userns_flag(remapped):
    result = remapped.cli("run", "--rm", "--userns", "host", "busybox", "id", "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"0\n"


def test_exec_pause_and_a_daemon_restart(remapped, runtime):
    uid, _gid = _root_ids()
    client = remapped.client()
    container = client.containers.run("busybox", ["sleep", "300"], detach=True,
                                      runtime=runtime)
    try:
        code, out = container.exec_run(["sh", "-c", "id -u; sleep 30 & echo $!"])
        assert code == 0 and out.split()[0] == b"0"
        container.pause()
        container.unpause()
        remapped.stop()
        remapped.start()
        client = remapped.client()
        code, out = client.containers.get(container.id).exec_run(["id", "-u"])
        assert (code, out) == (0, b"0\n")
        pid = client.api.inspect_container(container.id)["State"]["Pid"]
        assert f"Uid:\t{uid}\t" in open(f"/proc/{pid}/status").read()
    finally:
        remapped.client().api.remove_container(container.id, force=True)
    assert not [m for m in mounts_under(remapped.dir) if "/containers/" in m or "/layers/" in m]


def test_cp_speaks_the_containers_ids(remapped, tmp_path):
    """`cp` under a remap, running and stopped: archives carry the container's ids (its root
    is 0, not the host's shifted id), and files copied in belong to the container's root (or,
    with -a, to the archive's ids shifted into the container's range)."""
    import io
    import tarfile

    uid, gid = _root_ids()
    sdk = remapped.client()
    for running in (True, False):
        name = f"cp-remap-{int(running)}"
        if running:
            c = sdk.containers.run("busybox", ["sleep", "300"], detach=True, name=name)
        else:
            c = sdk.containers.create("busybox", ["true"], name=name)
        try:
            stream, _ = c.get_archive("/etc/passwd")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.getmember("passwd")
                assert (member.uid, member.gid) == (0, 0)
            src = tmp_path / f"in-{int(running)}"
            src.write_text("data")
            result = remapped.cli("cp", str(src), f"{name}:/tmp/plain")
            assert result.returncode == 0, result.stderr.decode()
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("owned")
                info.size, info.uid, info.gid = 1, 1000, 1000
                tar.addfile(info, io.BytesIO(b"x"))
            result = remapped.cli("cp", "-a", "-", f"{name}:/tmp", input=archive.getvalue())
            assert result.returncode == 0, result.stderr.decode()
            out = remapped.cli("cp", f"{name}:/tmp/", "-")
            with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
                owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
            assert owners["tmp/plain"] == (0, 0) and owners["tmp/owned"] == (1000, 1000)
            if running:   # the container itself agrees
                listing = c.exec_run(["stat", "-c", "%n %u %g", "/tmp/plain", "/tmp/owned"])
                assert listing.output.decode().split("\n")[:2] == ["/tmp/plain 0 0",
                                                                    "/tmp/owned 1000 1000"]
            bundle = os.path.join(remapped.root, "containers", c.id)
            assert not [n for n in os.listdir(bundle) if n.startswith("cp-lowers")]
        finally:
            c.remove(force=True)
    assert not mounts_under(remapped.root + "/containers")


def test_commit_of_a_remapped_container_keeps_the_containers_ids(remapped):
    """The upper dir of a remapped container holds shifted owners on the host; its commit's
    layer carries the container's ids, so the image runs again (remapped or not) with /etc
    and the new files owned by root, as docker's layers are."""
    import io
    import tarfile

    sdk = remapped.client()
    c = sdk.containers.run("busybox", ["sh", "-c", "echo x > /etc/made && "
                                       "mkdir -p /home/someone && touch /home/someone/f "
                                       "&& chown 1234:1234 /home/someone/f"],
                           name="commit-remap", detach=True)
    try:
        assert c.wait()["StatusCode"] == 0
        image = c.commit("remapped-commit", "1")
        out = sdk.containers.run(image.id, ["stat", "-c", "%u %g %n", "/etc", "/etc/made",
                                            "/home/someone/f"], remove=True)
        assert out.decode().splitlines() == ["0 0 /etc", "0 0 /etc/made",
                                             "1234 1234 /home/someone/f"]
        blob = b"".join(sdk.images.get(image.id).save())
        with tarfile.open(fileobj=io.BytesIO(blob)) as saved:
            index = json.load(saved.extractfile("manifest.json"))[0]
            top = saved.extractfile(index["Layers"][-1]).read()
        with tarfile.open(fileobj=io.BytesIO(top)) as layer:
            owners = {m.name: (m.uid, m.gid) for m in layer.getmembers()}
        assert owners["etc/made"] == (0, 0) and owners["home/someone/f"] == (1234, 1234)
    finally:
        c.remove(force=True)
        try:
            sdk.images.remove("remapped-commit:1", force=True)
        except Exception:
            pass


def test_build_under_remap_makes_layers_with_the_containers_ids(remapped, tmp_path):
    """A RUN step of a remapped build writes shifted owners; the layer it becomes carries the
    container's ids, so the image's files belong to root (and 1234) as written."""
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN mkdir -p /made && touch /made/root-file /made/user-file && "
        "chown 1234:1234 /made/user-file && chmod u+s /made/root-file\n")
    built = remapped.cli("build", "-q", "-t", "remap-build:1", str(tmp_path), timeout=120)
    assert built.returncode == 0, built.stderr.decode()
    try:
        out = remapped.cli("run", "--rm", "remap-build:1", "stat", "-c", "%u %g %A %n",
                           "/made", "/made/root-file", "/made/user-file")
        assert out.returncode == 0, out.stderr.decode()
        lines = out.stdout.decode().splitlines()
        assert lines[0].startswith("0 0 d") and lines[0].endswith("/made")
        assert lines[1].startswith("0 0 -rwS") or lines[1].startswith("0 0 -rws"), lines
        assert lines[2].startswith("1234 1234 ")
    finally:
        remapped.cli("rmi", "-f", "remap-build:1")
