"""The local driver's rules (names, options, in use, prune, crash recovery) on a temp root;
`--mount` as the docker CLI parses it; the prune rule of API versions."""

import os

import pytest

from skiff.api.volumes import prune_everything
from skiff.cli.mountopts import absolute_bind, mount_host_config, parse_mount
from skiff.engine.events import EventBus
from skiff.engine.volumes import ANONYMOUS_LABEL, VolumeService
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.store import MetadataDB


@pytest.fixture
def service(tmp_path):
    db = MetadataDB(tmp_path / "skiff.db")
    users: dict[str, list[str]] = {}
    svc = VolumeService(str(tmp_path), db, EventBus(), users=lambda n: users.get(n, []))
    svc.test_users = users
    try:
        yield svc
    finally:
        db.close()


def events(svc):
    return [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in
            svc.events._past]


def test_create_inspect_list(service, tmp_path):
    record = service.create("data", labels={"team": "a"})
    assert os.path.isdir(tmp_path / "volumes" / "data" / "_data")
    doc = service.inspect("data")
    assert doc["Mountpoint"] == str(tmp_path / "volumes" / "data" / "_data")
    assert doc["Labels"] == {"team": "a"} and doc["Options"] is None
    assert doc["Driver"] == "local" and doc["Scope"] == "local"
    assert doc["CreatedAt"].endswith("Z") and "." not in doc["CreatedAt"]
    again = service.create("data", labels={"other": "b"})   # docker: the existing one
    assert again.labels == record.labels
    anon = service.create(anonymous=True)
    assert len(anon.name) == 64 and anon.labels == {ANONYMOUS_LABEL: ""}
    unnamed = service.create()   # `volume create` without a name: not anonymous, as docker
    assert len(unnamed.name) == 64 and unnamed.labels == {}
    service.remove(unnamed.name)
    assert [e[:2] for e in events(service)][:2] == [("create", "data"), ("create", anon.name)]
    assert events(service)[0][2] == {"driver": "local"}
    service.test_users["data"] = ["c1"]
    assert [v["Name"] for v in service.list({"dangling": ["true"]})] == [anon.name]
    assert [v["Name"] for v in service.list({"dangling": ["0"]})] == ["data"]
    assert [v["Name"] for v in service.list({"label": ["team=a"]})] == ["data"]
    assert [v["Name"] for v in service.list({"label": ["team"], "name": ["dat"]})] == ["data"]
    assert service.list({"driver": ["nfs"]}) == []
    with pytest.raises(InvalidArgument, match="Invalid filter 'bogus'"):
        service.list({"bogus": ["1"]})


@pytest.mark.parametrize("name, options, message", [
    ("a", {}, 'create a: "a" includes invalid characters for a local volume name, only '
              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
              'directory, use absolute path'),
    ("../x", {}, 'create ../x: "../x" includes invalid characters'),
    ("ok", {"colour": "red"}, 'create ok: invalid option: "colour"'),
    ("ok", {"type": "tmpfs"}, 'create ok: missing required option: "device"'),
    ("ok", {"o": "size=1m", "device": "tmpfs"}, 'create ok: missing required option: "type"'),
    ("ok", {"size": "1g"}, "create ok: quota size requested but no quota support"),
])
def test_bad_create(service, tmp_path, name, options, message):
    with pytest.raises(InvalidArgument) as info:
        service.create(name, options=options)
    assert info.value.message.startswith(message)
    assert not os.path.exists(tmp_path / "volumes" / "ok")


def test_unknown_driver(service):
    with pytest.raises(NotFound, match='plugin "nfs-plugin" not found'):
        service.create("vv", driver="nfs-plugin")


def test_bind_volume_is_its_device(service, tmp_path):
    device = tmp_path / "dev-dir"
    device.mkdir()
    record = service.create("bb", options={"type": "none", "o": "bind", "device": str(device)})
    assert service.source(record) == str(device)
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        service.create("cc", options={"type": "none", "o": "bind",
                                     "device": str(tmp_path / "missing")})


def test_remove_rules(service, tmp_path):
    service.create("used")
    service.test_users["used"] = ["abc"]
    for force in (False, True):   # docker refuses an in-use volume even when forced
        with pytest.raises(Conflict, match=r"remove used: volume is in use - \[abc\]"):
            service.remove("used", force=force)
    with pytest.raises(NotFound, match="get nope: no such volume"):
        service.remove("nope")
    service.remove("nope", force=True)
    service.test_users.clear()
    (tmp_path / "volumes" / "used" / "_data" / "f").write_text("x")
    service.remove("used")
    assert not os.path.exists(tmp_path / "volumes" / "used")
    assert events(service)[-1][:2] == ("destroy", "used")


def test_prune_anonymous_unless_all(service, tmp_path):
    anon = service.create(anonymous=True)
    (tmp_path / "volumes" / anon.name / "_data" / "f").write_text("12345")
    service.create("named", labels={"keep": "no"})
    service.create("busy")
    service.test_users["busy"] = ["c"]
    result = service.prune({})
    assert result == {"VolumesDeleted": [anon.name], "SpaceReclaimed": 5}
    assert service.prune({"label!": ["keep"]}, all_volumes=True)["VolumesDeleted"] is None
    result = service.prune({"label": ["keep=no"]}, all_volumes=True)
    assert result["VolumesDeleted"] == ["named"]
    assert [v["Name"] for v in service.list()] == ["busy"]


def test_restore_finishes_half_removals(service, tmp_path):
    service.create("half")
    service.records.mark_removing("half")          # a crash right after this step
    (tmp_path / "volumes" / "stray" / "_data").mkdir(parents=True)   # a crash before a row
    (tmp_path / "volumes" / "kept" / "_data").mkdir(parents=True)
    (tmp_path / "volumes" / "kept" / "_data" / "data").write_text("x")
    service.restore({})
    assert not os.path.exists(tmp_path / "volumes" / "half")
    assert not os.path.exists(tmp_path / "volumes" / "stray")
    assert os.path.exists(tmp_path / "volumes" / "kept" / "_data" / "data")  # never lost
    assert service.records.removing() == []


def test_disk_usage(service, tmp_path):
    service.create("vv")
    data = tmp_path / "volumes" / "vv" / "_data"
    (data / "f").write_bytes(b"x" * 100)
    os.link(data / "f", data / "g")   # counted once
    service.test_users["vv"] = ["a", "b"]
    [row] = service.disk_usage()
    assert row["UsageData"] == {"Size": 100, "RefCount": 2}


def test_cli_mount_parsing(tmp_path):
    assert parse_mount("type=bind,src=/srv,dst=/data,readonly,bind-propagation=rshared") == {
        "Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": True,
        "BindOptions": {"Propagation": "rshared"}}
    assert parse_mount("source=v,target=/v,volume-nocopy,volume-label=a=b,"
                       "volume-opt=type=tmpfs") == {
        "Type": "volume", "Source": "v", "Target": "/v",
        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                          "DriverConfig": {"Options": {"type": "tmpfs"}}}}
    assert parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Target": "/t",
        "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}
    assert parse_mount('"type=bind","src=/a,b",dst=/c')["Source"] == "/a,b"   # CSV quoting
    for text, message in [
        ("type=bind,src=/a", "target is required"),
        ("type=bind,dst=/a,volume-nocopy", "cannot mix 'volume-*' options with mount type "
                                           "'bind'"),
        ("dst=/a,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
        ("dst=/a,junk", "invalid field 'junk' must be a key=value pair"),
        ("dst=/a,readonly=maybe", "invalid value for readonly: maybe"),
        ("type=tmpfs,dst=/a,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_mount(text)
        assert str(info.value) == message
    with pytest.raises(ValueError, match='invalid argument "dst" for "--mount" flag'):
        mount_host_config(["dst"], [])
    assert mount_host_config([], ["a:ro"]) == {"VolumesFrom": ["a:ro"]}
    assert absolute_bind("./x:/y:ro") == os.path.abspath("x") + ":/y:ro"
    assert absolute_bind("name:/y") == "name:/y"


def test_prune_version_rule():
    assert prune_everything("1.41", {}) is True
    assert prune_everything("1.42", {}) is False
    assert prune_everything("1.45", {"all": ["true"]}) is True
    assert prune_everything("1.45", {"all": ["0"]}) is False
    with pytest.raises(InvalidArgument):
        prune_everything("1.45", {"all": ["yes please"]})


def test_new_volumes_owned_by_the_remapped_root(service, tmp_path):
    service.owner = lambda: (100000, 100000)
    service.create("remapped")
    st = os.stat(tmp_path / "volumes" / "remapped" / "_data")
    assert (st.st_uid, st.st_gid) == (100000, 100000)
