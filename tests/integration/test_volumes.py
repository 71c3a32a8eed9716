"""Volumes and mounts with real containers: named and anonymous volumes, binds, tmpfs,
--volumes-from, copy-up, docker's removal rules and errors, disk usage, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def sdk(daemon):
    return daemon.client()


@pytest.fixture
def name():
    return "vt-" + uuid.uuid4().hex[:10]


@pytest.fixture
def hostdir():
    path = tempfile.mkdtemp(prefix="skiff-bind-", dir="/var/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def volimg(daemon, sdk):
    """An image whose /data (owned by 1000:1000, mode 750) is a VOLUME with one file."""
    base = sdk.containers.run("busybox", ["sh", "-c",
                                          "mkdir -p /data/sub && echo img > /data/f && "
                                          "ln -s f /data/link && chown -R 1000:1000 /data && "
                                          "chmod 750 /data && chmod 600 /data/f"],
                              detach=True)
    base.wait()
    result = daemon.cli("commit", "-c", "VOLUME /data", base.id, "skiff-volimg:1")
    assert result.returncode == 0, result.stderr
    base.remove()
    return "skiff-volimg:1"


def run(sdk, command, **kw):
    """Run busybox to completion; its output (stdout and stderr)."""
    container = sdk.containers.run(kw.pop("image", "busybox"), ["sh", "-c", command],
                                   detach=True, **kw)
    try:
        status = container.wait()["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(v=True, force=True)


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def cleanup_volume(sdk, volume_name):
    try:
        sdk.volumes.get(volume_name).remove(force=True)
    except docker.errors.NotFound:
        pass


# -- named volumes -----------------------------------------------------------------------------


def test_named_volume_outlives_its_container(sdk, daemon, name):
    try:
        assert run(sdk, "echo kept > /data/file", volumes={name: {"bind": "/data"}})[0] == 0
        volume = sdk.volumes.get(name)   # `-v name:/data` made it
        assert volume.attrs["Driver"] == "local"
        assert volume.attrs["Mountpoint"] == os.path.join(daemon.root, "volumes", name, "_data")
        holder = sdk.containers.create("busybox", "true", volumes=[f"{name}:/data", "/anon"])
        try:
            by_dest = {m["Destination"]: m for m in holder.attrs["Mounts"]}
            assert by_dest["/data"] == {
                "Type": "volume", "Name": name, "Source": volume.attrs["Mountpoint"],
                "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True,
                "Propagation": ""}
            assert by_dest["/anon"]["Mode"] == "z"   # a Binds entry, as docker has it
        finally:
            holder.remove(v=True)
        assert run(sdk, "cat /data/file", volumes={name: {"bind": "/data"}}) == (0, "kept\n")
    finally:
        cleanup_volume(sdk, name)


def test_two_running_containers_share_a_volume(sdk, name):
    sdk.volumes.create(name)
    loop = ("i=0; while [ $i -lt 100 ]; do [ -f /v/{peer} ] && cat /v/{peer} && exit 0; "
            "i=$((i+1)); sleep 0.1; done; exit 1")
    one = sdk.containers.run("busybox", ["sh", "-c", "echo from-one > /v/one; " +
                                         loop.format(peer="two")],
                             detach=True, volumes=[f"{name}:/v"])
    two = sdk.containers.run("busybox", ["sh", "-c", "echo from-two > /v/two; " +
                                         loop.format(peer="one")],
                             detach=True, volumes=[f"{name}:/v"])
    try:
        assert one.wait()["StatusCode"] == 0 and two.wait()["StatusCode"] == 0
        assert one.logs() == b"from-two\n" and two.logs() == b"from-one\n"
        # `one` waited, running, until `two` wrote: both ran at the same time
    finally:
        one.remove(force=True)
        two.remove(force=True)
        cleanup_volume(sdk, name)


def test_read_only_is_enforced(sdk, name, hostdir):
    sdk.volumes.create(name)
    try:
        status, out = run(sdk, "echo x > /v/f", volumes=[f"{name}:/v:ro"])
        assert status != 0 and "Read-only file system" in out
        status, out = run(sdk, "echo x > /b/f", mounts=[docker.types.Mount(
            "/b", hostdir, type="bind", read_only=True)])
        assert status != 0 and "Read-only file system" in out
        assert os.listdir(hostdir) == []
        container = sdk.containers.create("busybox", "true", volumes=[f"{name}:/v:ro"])
        try:
            [mount] = container.attrs["Mounts"]
            assert mount == {"Type": "volume", "Name": name, "Source": mount["Source"],
                             "Destination": "/v", "Driver": "local", "Mode": "ro",
                             "RW": False, "Propagation": ""}
        finally:
            container.remove()
    finally:
        cleanup_volume(sdk, name)


def test_bind_mount_both_directions(sdk, hostdir):
    with open(os.path.join(hostdir, "from-host"), "w") as f:
        f.write("hello container\n")
    status, out = run(sdk, "cat /src/from-host && echo hello host > /src/from-container",
                      volumes={hostdir: {"bind": "/src", "mode": "rw"}})
    assert (status, out) == (0, "hello container\n")
    with open(os.path.join(hostdir, "from-container")) as f:
        assert f.read() == "hello host\n"
    container = sdk.containers.create("busybox", "true", volumes=[f"{hostdir}:/src"])
    try:
        assert container.attrs["Mounts"] == [{
            "Type": "bind", "Source": hostdir, "Destination": "/src", "Mode": "",
            "RW": True, "Propagation": "rprivate"}]
        assert container.attrs["HostConfig"]["Binds"] == [f"{hostdir}:/src:rw"] or \
            container.attrs["HostConfig"]["Binds"] == [f"{hostdir}:/src"]
    finally:
        container.remove()


def test_bind_a_single_file(sdk, hostdir):
    config = os.path.join(hostdir, "app.conf")
    with open(config, "w") as f:
        f.write("key=value\n")
    status, out = run(sdk, "cat /etc/app.conf; echo x >> /etc/app.conf",
                      volumes=[f"{config}:/etc/app.conf:ro"])
    assert status != 0 and out.startswith("key=value\n") and "Read-only" in out
    assert run(sdk, "echo more >> /etc/app.conf", volumes=[f"{config}:/etc/app.conf"])[0] == 0
    with open(config) as f:
        assert f.read() == "key=value\nmore\n"


def test_missing_bind_source_made_by_v_refused_by_mount(sdk, hostdir):
    missing = os.path.join(hostdir, "made", "by", "v")
    assert run(sdk, "touch /m/x", volumes=[f"{missing}:/m"])[0] == 0
    assert os.path.exists(os.path.join(missing, "x"))
    gone = os.path.join(hostdir, "never")
    with pytest.raises(docker.errors.APIError) as info:
        sdk.containers.create("busybox", "true",
                              mounts=[docker.types.Mount("/m", gone, type="bind")])
    assert info.value.status_code == 400
    assert info.value.explanation == ('invalid mount config for type "bind": bind source path '
                                      f'does not exist: {gone}')
    assert not os.path.exists(gone)


# -- copy-up -----------------------------------------------------------------------------------


def test_copy_up_once_with_ownership(sdk, volimg, name):
    try:
        status, out = run(sdk, "stat -c '%u:%g %a %n' /data /data/f /data/sub && "
                          "readlink /data/link && cat /data/f && echo changed > /data/f && "
                          "rm -r /data/sub",
                          image=volimg, volumes=[f"{name}:/data"])
        assert status == 0, out
        assert out == ("1000:1000 750 /data\n1000:1000 600 /data/f\n"
                       "1000:1000 755 /data/sub\nf\nimg\n")
        # mounted again: the volume has content, so nothing is copied over it
        assert run(sdk, "cat /data/f; ls /data", image=volimg,
                   volumes=[f"{name}:/data"]) == (0, "changed\nf\nlink\n")
    finally:
        cleanup_volume(sdk, name)


def test_nocopy_and_anonymous_image_volume(sdk, daemon, volimg, name):
    try:
        assert run(sdk, "ls -A /data", image=volimg,
                   volumes=[f"{name}:/data:nocopy"]) == (0, "")
        container = sdk.containers.run(volimg, ["cat", "/data/f"], detach=True)
        try:
            container.wait()
            assert container.logs() == b"img\n"
            [mount] = container.attrs["Mounts"]
            assert mount["Type"] == "volume" and len(mount["Name"]) == 64
            assert mount["Mode"] == ""   # an image VOLUME: no mode, as docker shows it
            anonymous = sdk.volumes.get(mount["Name"])
            assert anonymous.attrs["Labels"] == {"com.docker.volume.anonymous": ""}
        finally:
            container.remove(v=True)
        with pytest.raises(docker.errors.NotFound):
            sdk.volumes.get(mount["Name"])   # rm -v removed it
        assert not os.path.exists(os.path.join(daemon.root, "volumes", mount["Name"]))
    finally:
        cleanup_volume(sdk, name)


# -- volumes-from ------------------------------------------------------------------------------


def test_volumes_from(sdk, name, hostdir):
    source = sdk.containers.create("busybox", "true", name=name,
                                   volumes=[f"{name}-vol:/shared", f"{hostdir}:/host", "/anon"])
    try:
        status, out = run(sdk, "echo a > /shared/a && echo b > /host/b && echo c > /anon/c "
                          "&& cat /shared/a /host/b /anon/c", volumes_from=[name])
        assert (status, out) == (0, "a\nb\nc\n")
        status, out = run(sdk, "cat /shared/a; echo x > /shared/x", volumes_from=[f"{name}:ro"])
        assert status != 0 and out.startswith("a\n") and "Read-only file system" in out
        reader = sdk.containers.create("busybox", "true", volumes_from=[f"{name}:ro"])
        try:
            mounts = {m["Destination"]: m for m in reader.attrs["Mounts"]}
            assert set(mounts) == {"/shared", "/host", "/anon"}
            assert not any(m["RW"] for m in mounts.values())
            assert mounts["/shared"]["Name"] == f"{name}-vol"
        finally:
            reader.remove(v=True)   # -v on a borrower keeps the source's anonymous volume
        anon = [m for m in source.attrs["Mounts"] if m["Destination"] == "/anon"][0]["Name"]
        sdk.volumes.get(anon)
    finally:
        source.remove(v=True)
        cleanup_volume(sdk, f"{name}-vol")
    with pytest.raises(docker.errors.NotFound):
        sdk.volumes.get(anon)


# -- removal rules and prune ---------------------------------------------------------------------


def test_volume_in_use_is_refused(sdk, name):
    sdk.volumes.create(name)
    container = sdk.containers.create("busybox", "true", volumes=[f"{name}:/v"])
    try:
        for force in (False, True):   # stopped or not, forced or not: docker refuses
            with pytest.raises(docker.errors.APIError) as info:
                sdk.volumes.get(name).remove(force=force)
            assert info.value.status_code == 409
            assert info.value.explanation == f"remove {name}: volume is in use - [{container.id}]"
    finally:
        container.remove()
    sdk.volumes.get(name).remove()
    with pytest.raises(docker.errors.NotFound) as info:
        sdk.volumes.get(name)
    assert info.value.explanation == f"get {name}: no such volume"


def test_rm_v_and_auto_remove_keep_named_volumes(sdk, name):
    container = sdk.containers.create("busybox", "true", volumes=[f"{name}:/named", "/anon"])
    anon = [m["Name"] for m in container.attrs["Mounts"] if m["Destination"] == "/anon"][0]
    container.remove(v=True)
    sdk.volumes.get(name)
    with pytest.raises(docker.errors.NotFound):
        sdk.volumes.get(anon)
    before = {v.name for v in sdk.volumes.list()}
    auto = sdk.containers.run("busybox", "true", detach=True, auto_remove=True,
                              volumes=["/anon2"])
    try:
        auto.wait(condition="removed")
    except docker.errors.NotFound:
        pass   # gone already
    assert {v.name for v in sdk.volumes.list()} == before   # --rm took its anonymous volume
    cleanup_volume(sdk, name)


def test_prune_rules(sdk, daemon, name):
    named = sdk.volumes.create(name, labels={"purpose": "prune-test"})
    anon = sdk.volumes.create(labels={"com.docker.volume.anonymous": "",
                                      "purpose": "prune-test"})
    used = sdk.volumes.create(f"{name}-used", labels={"purpose": "prune-test"})
    unnamed = sdk.volumes.create(labels={"purpose": "prune-test"})   # no name: not anonymous
    assert "com.docker.volume.anonymous" not in unnamed.attrs["Labels"]
    holder = sdk.containers.create("busybox", "true", volumes=[f"{used.name}:/u"])
    try:
        result = sdk.volumes.prune(filters={"label": "purpose=prune-test"})
        assert result["VolumesDeleted"] == [anon.name]   # API >= 1.42: anonymous only
        old = docker.DockerClient(base_url=daemon.host, version="1.41")
        result = old.volumes.prune(filters={"label": "purpose=prune-test"})
        assert sorted(result["VolumesDeleted"]) == sorted([name, unnamed.name])  # every
        # unused one before 1.42
        assert result["SpaceReclaimed"] == 0
        names = {v.name for v in sdk.volumes.list()}
        assert used.name in names and name not in names
    finally:
        holder.remove()
        cleanup_volume(sdk, used.name)


def test_list_filters(sdk, name):
    a = sdk.volumes.create(f"{name}-a", labels={"tier": "db"})
    b = sdk.volumes.create(f"{name}-b")
    holder = sdk.containers.create("busybox", "true", volumes=[f"{a.name}:/a"])
    try:
        def names(**filters):
            return sorted(v.name for v in sdk.volumes.list(filters=filters)
                          if v.name.startswith(name))
        assert names(name=name) == [a.name, b.name]
        assert names(label="tier=db") == [a.name]
        assert names(label="tier") == [a.name]
        assert names(dangling="true") == [b.name]
        assert names(dangling="false") == [a.name]
        assert names(driver="local") == [a.name, b.name]
        assert [c.id for c in sdk.containers.list(all=True, filters={"volume": a.name})] == \
            [holder.id]   # `ps --filter volume=`
        assert sdk.containers.list(all=True, filters={"volume": b.name}) == []
        with pytest.raises(docker.errors.APIError) as info:
            sdk.volumes.list(filters={"colour": "red"})
        assert info.value.status_code == 400
    finally:
        holder.remove()
        a.remove()
        b.remove()


def test_volume_rm_leaves_nothing(sdk, daemon, name):
    sdk.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=4m"})
    sdk.volumes.create(f"{name}-plain")
    run(sdk, "echo x > /t/x; echo y > /p/y", volumes=[f"{name}:/t", f"{name}-plain:/p"])
    sdk.volumes.get(name).remove()
    sdk.volumes.get(f"{name}-plain").remove()
    for volume_name in (name, f"{name}-plain"):
        assert not os.path.exists(os.path.join(daemon.root, "volumes", volume_name))
    assert mounts_under(os.path.join(daemon.root, "volumes")) == []


# -- the local driver's options ------------------------------------------------------------------


def test_tmpfs_volume_shared_while_in_use(sdk, daemon, name):
    sdk.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs",
                                          "o": "size=8m,mode=1777"})
    data = os.path.join(daemon.root, "volumes", name, "_data")
    first = sdk.containers.run("busybox", ["sh", "-c", "echo one > /t/f; sleep 60"],
                               detach=True, volumes=[f"{name}:/t"])
    try:
        assert mounts_under(data) == [data]   # mounted on the host while in use
        assert run(sdk, "cat /t/f; df -k /t | tail -1 | awk '{print $2}'",
                   volumes=[f"{name}:/t"]) == (0, "one\n8192\n")
        assert mounts_under(data) == [data]   # the other user still holds it
    finally:
        first.remove(force=True)
    deadline = time.monotonic() + 10
    while mounts_under(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mounts_under(data) == []           # the last user gone: unmounted
    assert run(sdk, "ls -A /t", volumes=[f"{name}:/t"]) == (0, "")   # a tmpfs starts empty
    sdk.volumes.get(name).remove()


def test_bind_option_volume(sdk, name, hostdir):
    sdk.volumes.create(name, driver_opts={"type": "none", "o": "bind", "device": hostdir})
    try:
        assert run(sdk, "echo via-volume > /b/f", volumes=[f"{name}:/b"])[0] == 0
        with open(os.path.join(hostdir, "f")) as f:
            assert f.read() == "via-volume\n"
        sdk.volumes.get(name).remove()
        assert os.path.exists(os.path.join(hostdir, "f"))   # the device is the user's
    finally:
        cleanup_volume(sdk, name)


def test_mount_tmpfs_and_subpath(sdk, name):
    status, out = run(sdk, "stat -c %a /t && df -k /t | tail -1 | awk '{print $2}'",
                      mounts=[docker.types.Mount("/t", None, type="tmpfs",
                                                 tmpfs_size=2 << 20, tmpfs_mode=0o1770)])
    assert (status, out) == (0, "1770\n2048\n")
    try:
        assert run(sdk, "mkdir -p /v/sub && echo s > /v/sub/f", volumes=[f"{name}:/v"])[0] == 0
        status, out = run(sdk, "cat /s/f", mounts=[{
            "Type": "volume", "Source": name, "Target": "/s",
            "VolumeOptions": {"Subpath": "sub"}}])
        assert (status, out) == (0, "s\n")
        # a symlink in the volume is followed inside the volume, never out to the host
        assert run(sdk, "ln -s /etc /v/etclink", volumes=[f"{name}:/v"])[0] == 0
        with pytest.raises(docker.errors.APIError) as info:
            sdk.containers.create("busybox", "true", mounts=[{
                "Type": "volume", "Source": name, "Target": "/s",
                "VolumeOptions": {"Subpath": "etclink"}}])
        assert info.value.status_code == 400 and "no such file or directory" in str(info.value)
    finally:
        cleanup_volume(sdk, name)


# -- errors as docker gives them -----------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"volumes": ["foo/bar:/x"]},
     'create foo/bar: "foo/bar" includes invalid characters for a local volume name, only '
     '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use '
     'absolute path'),
    ({"volumes": ["/tmp:/"]},
     "invalid volume specification: '/tmp:/': invalid mount config for type \"bind\": "
     "invalid specification: destination can't be '/'"),
    ({"mounts": [{"Type": "volume", "Source": "v1x", "Target": "/"}]},
     "invalid mount config for type \"volume\": invalid specification: destination can't "
     "be '/'"),
    ({"mounts": [{"Type": "bind", "Source": "relative/dir", "Target": "/x"}]},
     "invalid mount config for type \"bind\": invalid mount path: 'relative/dir' mount path "
     "must be absolute"),
    ({"volumes": ["/tmp:/x:bogus"]}, "invalid mode: bogus"),
    ({"volumes": ["/tmp:/d", "/var/tmp:/d"]}, "Duplicate mount point: /d"),
])
def test_errors(sdk, daemon, kwargs, message):
    before_containers = len(sdk.containers.list(all=True))
    before_volumes = sorted(os.listdir(os.path.join(daemon.root, "volumes")))
    with pytest.raises(docker.errors.APIError) as info:
        sdk.containers.create("busybox", "true", **kwargs)
    assert info.value.status_code == 400
    assert info.value.explanation == message
    assert len(sdk.containers.list(all=True)) == before_containers
    assert sorted(os.listdir(os.path.join(daemon.root, "volumes"))) == before_volumes


def test_bad_volume_create(sdk, daemon):
    with pytest.raises(docker.errors.APIError) as info:
        sdk.volumes.create("bad name!")
    assert info.value.status_code == 400 and "includes invalid characters" in str(info.value)
    with pytest.raises(docker.errors.APIError) as info:
        sdk.volumes.create("okname", driver_opts={"type": "tmpfs"})
    assert info.value.explanation == 'create okname: missing required option: "device"'
    assert not os.path.exists(os.path.join(daemon.root, "volumes", "okname"))


# -- system df and events ------------------------------------------------------------------------


def test_system_df_counts_volumes(sdk, daemon, name):
    sdk.volumes.create(name)
    holder = sdk.containers.run("busybox", ["sh", "-c", "head -c 3000 /dev/zero > /v/f"],
                                detach=True, volumes=[f"{name}:/v"])
    try:
        holder.wait()
        rows = {v["Name"]: v for v in sdk.df()["Volumes"]}
        assert rows[name]["UsageData"] == {"Size": 3000, "RefCount": 1}
        result = daemon.cli("system", "df", "-v")
        assert result.returncode == 0, result.stderr
        text = result.stdout.decode()
        assert "Local Volumes space usage:" in text
        line = [l for l in text.splitlines() if l.startswith(name + " ")][0]
        assert line.split() == [name, "1", "3kB"]
        summary = daemon.cli("system", "df", "--format", "{{.Type}} {{.Active}}")
        assert "Local Volumes 1" in summary.stdout.decode() or \
            "Local Volumes" in summary.stdout.decode()
    finally:
        holder.remove()
        cleanup_volume(sdk, name)


def test_volume_events(sdk, name):
    since = time.time()
    sdk.volumes.create(name)
    container = sdk.containers.run("busybox", "true", detach=True, volumes=[f"{name}:/v:ro"])
    container.wait()
    container.remove()
    sdk.volumes.get(name).remove()
    until = time.time() + 0.5
    seen = [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"])
            for e in sdk.events(since=since, until=until, decode=True,
                                filters={"type": "volume", "volume": name})]
    assert [s[0] for s in seen] == ["create", "mount", "unmount", "destroy"]
    assert seen[0][2] == {"driver": "local"}
    assert seen[1][2] == {"driver": "local", "container": container.id, "destination": "/v",
                          "read/write": "false", "propagation": ""}
    assert seen[2][2] == {"driver": "local", "container": container.id}
    assert seen[3][2] == {"driver": "local"}


# -- the command line --------------------------------------------------------------------------


def test_cli_volume_commands(daemon, name):
    def cli(*args, input=None):
        result = daemon.cli(*args, input=input)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    assert cli("volume", "create", "--label", "k=v", name) == (0, f"{name}\n", "")
    status, _, err = cli("volume", "create", "--name", name, name)
    assert status == 1 and "conflicting options: cannot specify a volume-name" in err
    status, out, _ = cli("volume", "ls", "--filter", f"name={name}")
    assert out.splitlines() == ["DRIVER    VOLUME NAME", f"local     {name}"]
    assert cli("volume", "ls", "-q", "-f", "label=k=v")[1].split() == [name]
    status, out, _ = cli("volume", "inspect", name)
    [doc] = json.loads(out)
    assert doc["Name"] == name and doc["Labels"] == {"k": "v"}
    assert cli("volume", "inspect", "-f", "{{.Driver}} {{.Labels.k}}", name)[1] == "local v\n"
    status, out, err = cli("run", "--rm", "-v", f"{name}:/d", "--mount",
                           "type=tmpfs,dst=/t,tmpfs-size=1m", "busybox", "sh", "-c",
                           "echo hi > /d/f; grep -c ' /t ' /proc/mounts")
    assert (status, out) == (0, "1\n"), err
    status, out, err = cli("run", "--rm", "--mount", "type=bind,src=/nonexistent-v7,dst=/x",
                           "busybox", "true")
    assert status == 125
    assert ('invalid mount config for type "bind": bind source path does not exist: '
            '/nonexistent-v7') in err
    status, out, err = cli("run", "--rm", "--mount", "type=bind,dst=/x,volume-nocopy",
                           "busybox", "true")
    assert status == 125 and "cannot mix 'volume-*' options with mount type 'bind'" in err
    status, out, err = cli("volume", "rm", name, "nosuch-" + name)
    assert status == 1 and out == f"{name}\n"
    assert err.strip() == f"Error response from daemon: get nosuch-{name}: no such volume"
    assert cli("volume", "rm", "-f", "nosuch-" + name)[0] == 0
    cli("volume", "create", f"{name}-p")
    status, out, _ = cli("volume", "prune", input=b"n\n")
    assert status == 0 and "anonymous local volumes" in out and "Total" not in out
    status, out, _ = cli("volume", "prune", "-a", "-f", "--filter", f"label!=keep")
    assert status == 0 and f"Deleted Volumes:\n" in out and f"{name}-p\n" in out
    assert "Total reclaimed space:" in out
    for line in ("create", "ls", "inspect", "rm", "prune"):
        assert cli("volume", line, "--help")[0] == 0
    assert "--volumes-from" in cli("run", "--help")[1] and "--mount" in cli("run", "--help")[1]


def test_daemon_restart_keeps_volume_state(daemon, sdk, name):
    """Containers outlive skiffd; so do their volumes' host mounts and the in-use rule."""
    sdk.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    data = os.path.join(daemon.root, "volumes", name, "_data")
    container = sdk.containers.run("busybox", ["sh", "-c", "echo x > /t/x; sleep 120"],
                                   detach=True, volumes=[f"{name}:/t"])
    try:
        daemon.stop()
        daemon.start()
        client = daemon.client()
        assert mounts_under(data) == [data]
        with pytest.raises(docker.errors.APIError) as info:
            client.volumes.get(name).remove()
        assert info.value.status_code == 409
        assert client.containers.get(container.id).exec_run("cat /t/x").output == b"x\n"
        client.containers.get(container.id).remove(force=True)
        deadline = time.monotonic() + 10
        while mounts_under(data) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mounts_under(data) == []
        client.volumes.get(name).remove()
    finally:
        try:
            sdk.containers.get(container.id).remove(force=True)
        except docker.errors.NotFound:
            pass
        cleanup_volume(sdk, name)


def test_crash_during_volume_rm_is_finished_at_start(daemon, name):
    """Killed between flagging the row and deleting the data: the next start completes the
    removal (never a row without its data, never data without a row)."""
    client = daemon.client()
    client.volumes.create(name)
    assert run(client, "echo x > /v/f", volumes=[f"{name}:/v"])[0] == 0
    path = os.path.join(daemon.root, "volumes", name)
    daemon.stop()
    os.environ["SKIFF_FAILPOINTS"] = "volume-remove-marked"
    try:
        daemon.start()
    finally:
        del os.environ["SKIFF_FAILPOINTS"]
    try:
        with pytest.raises(Exception):   # skiffd dies in the middle of the request
            daemon.client().volumes.get(name).remove()
        assert daemon.proc.wait(timeout=20) == 86
        assert os.path.exists(os.path.join(path, "_data", "f"))   # the crash left the data
    finally:
        if daemon.proc.poll() is not None:
            daemon.start()
    client = daemon.client()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)
    assert name not in [v.name for v in client.volumes.list()]
    assert not os.path.exists(path)


def test_exit_while_daemon_is_away_unmounts_at_start(daemon, name):
    """A container that ends while skiffd is stopped: its tmpfs volume is unmounted once
    skiffd is back and learns of the exit."""
    client = daemon.client()
    client.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs"})
    data = os.path.join(daemon.root, "volumes", name, "_data")
    container = client.containers.run("busybox", ["sleep", "2"], detach=True,
                                      volumes=[f"{name}:/t"])
    try:
        assert mounts_under(data) == [data]
        daemon.stop()
        try:
            time.sleep(3)   # it exits meanwhile; its monitor keeps the exit status
            assert mounts_under(data) == [data]
        finally:
            daemon.start()
        client = daemon.client()
        deadline = time.monotonic() + 10
        while mounts_under(data) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mounts_under(data) == []
        assert client.containers.get(container.id).status == "exited"
    finally:
        client.containers.get(container.id).remove(force=True)
        cleanup_volume(client, name)


def test_bind_propagation(sdk, hostdir):
    """`:rslave` sees what the host mounts below the source later; the default rprivate does
    not; docker's refusal when the source is not on a shared mount."""
    with pytest.raises(docker.errors.APIError) as info:
        sdk.containers.run("busybox", "true", volumes=[f"{hostdir}:/x:rslave"], name=None,
                           detach=True)
    assert f"path {hostdir} is mounted on " in str(info.value)
    assert "but it is not a shared or slave mount" in str(info.value)
    for c in sdk.containers.list(all=True, filters={"volume": hostdir}):
        c.remove(force=True)
    sub = os.path.join(hostdir, "sub")
    os.mkdir(sub)
    subprocess.run(["mount", "--bind", hostdir, hostdir], check=True)
    waiter = ("i=0; while [ $i -lt 50 ]; do [ -f /x/sub/f ] && cat /x/sub/f && exit 0; "
              "i=$((i+1)); sleep 0.1; done; exit 1")
    containers = []
    try:
        subprocess.run(["mount", "--make-shared", hostdir], check=True)
        for mode in ("rslave", "rprivate"):
            containers.append(sdk.containers.run("busybox", ["sh", "-c", waiter], detach=True,
                                                 volumes=[f"{hostdir}:/x:{mode}"]))
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", sub], check=True)
        with open(os.path.join(sub, "f"), "w") as f:
            f.write("propagated\n")
        slave, private = containers
        assert slave.wait()["StatusCode"] == 0 and slave.logs() == b"propagated\n"
        assert private.wait()["StatusCode"] == 1   # rprivate: the new mount never arrives
    finally:
        for c in containers:
            c.remove(force=True)
        subprocess.run(["umount", sub], stderr=subprocess.DEVNULL)
        subprocess.run(["umount", hostdir], stderr=subprocess.DEVNULL)
    assert mounts_under(hostdir) == []


def test_generic_inspect_finds_volumes(daemon, sdk, name):
    sdk.volumes.create(name)
    try:
        for args in (("inspect", name), ("inspect", "--type", "volume", name)):
            result = daemon.cli(*args)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout)[0]["Mountpoint"].endswith(f"/{name}/_data")
    finally:
        cleanup_volume(sdk, name)


def test_volume_that_cannot_mount_fails_the_start_and_leaks_nothing(sdk, daemon, name):
    sdk.volumes.create(name, driver_opts={"type": "tmpfs", "device": "tmpfs",
                                          "o": "size=bogus"})
    container = sdk.containers.create("busybox", "true", volumes=[f"{name}:/t"])
    try:
        with pytest.raises(docker.errors.APIError) as info:
            container.start()
        message = str(info.value)
        assert "error while mounting volume" in message
        assert "failed to mount local volume" in message
        assert message.count("error while mounting volume") == 1
        assert mounts_under(os.path.join(daemon.root, "volumes")) == []
        container.reload()
        assert container.status == "created"
    finally:
        container.remove()
    sdk.volumes.get(name).remove()
