"""Binds, Mounts, VolumesFrom and image VOLUMEs -> mount points -> config.json, as values."""

from types import SimpleNamespace

import pytest

from skiff.engine import mounts
from skiff.engine.bundle import order_mounts
from skiff.errors import InvalidArgument


def test_bind_forms():
    point = mounts.parse_bind("/srv/data:/data:ro,rshared")
    assert point["Type"] == "bind" and point["Source"] == "/srv/data"
    assert point["Destination"] == "/data" and point["RW"] is False
    assert point["Propagation"] == "rshared" and point["Mode"] == "ro,rshared"
    named = mounts.parse_bind("cache:/var/cache/:nocopy")
    assert named["Type"] == "volume" and named["Name"] == "cache"
    assert named["Destination"] == "/var/cache" and named["CopyData"] is False
    assert mounts.parse_bind("cache:/c")["Mode"] == "z"   # as docker shows a local volume
    assert mounts.parse_bind("/h:/c")["Propagation"] == "rprivate"


@pytest.mark.parametrize("raw, message", [
    ("/a:ro", "invalid volume specification: '/a:ro'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("/a:/b:bogus", "invalid mode: bogus"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/b:c:d", "invalid volume specification: '/a:/b:c:d'"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("v:rel", "invalid volume specification: 'v:rel': invalid mount config for type "
              "\"volume\": invalid mount path: 'rel' mount path must be absolute"),
])
def test_bad_binds(raw, message):
    with pytest.raises(InvalidArgument) as info:
        mounts.parse_bind(raw)
    assert info.value.message == message


def test_mount_specs(tmp_path):
    bind = mounts.parse_mount({"Type": "bind", "Source": str(tmp_path), "Target": "/x",
                               "ReadOnly": True,
                               "BindOptions": {"Propagation": "rslave"}})
    assert bind["RW"] is False and bind["Propagation"] == "rslave"
    volume = mounts.parse_mount({"Type": "volume", "Source": "v", "Target": "/v",
                                 "VolumeOptions": {"NoCopy": True}})
    assert volume["Name"] == "v" and volume["CopyData"] is False and volume["Mode"] == "z"
    tmpfs = mounts.parse_mount({"Type": "tmpfs", "Target": "/t",
                                "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777}})
    assert tmpfs["TmpfsOptions"] == ["nosuid", "nodev", "noexec", "mode=1777", "size=64m"]


@pytest.mark.parametrize("spec, message", [
    ({"Type": "bind", "Source": "/nonexistent-skiff-src", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: '
     '/nonexistent-skiff-src'),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be "
     "absolute"),
    ({"Type": "bind", "Target": "/x"},
     'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "volume", "Source": "v", "Target": "/"},
     "invalid mount config for type \"volume\": invalid specification: destination can't be "
     "'/'"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using '
     'anonymous volumes'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/x"},
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "nfs", "Target": "/x"}, 'invalid mount config for type "nfs": mount type unknown'),
    ({"Type": "volume", "Source": "v"},
     'invalid mount config for type "volume": field Target must not be empty'),
    ({"Type": "volume", "Target": 5},
     "json: cannot unmarshal number into Go struct field Mount.HostConfig.Mounts.Target of type "
     "string"),
    ({"Type": "bind", "Target": "/x", "Source": "/", "BindOptions": "rshared"},
     "json: cannot unmarshal string into Go struct field Mount.HostConfig.Mounts.BindOptions of "
     "type object"),
])
def test_bad_mounts(spec, message):
    """(and wrongly typed fields are a 400, never a crash)"""
    with pytest.raises(InvalidArgument) as info:
        mounts.parse_mount(spec)
    assert info.value.message == message


def test_plan_precedence_and_anonymous():
    source = SimpleNamespace(id="c1", config={"MountPoints": [
        {"Type": "volume", "Name": "shared", "Source": "/v/shared/_data", "Destination": "/s",
         "Driver": "local", "Mode": "", "RW": True, "Propagation": "", "CopyData": True},
        {"Type": "bind", "Name": "", "Source": "/h", "Destination": "/b", "Driver": "",
         "Mode": "", "RW": True, "Propagation": "rprivate"}]})
    points = mounts.plan({"VolumesFrom": ["c1:ro"], "Binds": ["/x:/b"],
                          "Tmpfs": {"/run": ""}},
                         {"/extra": {}}, {"/s": {}, "/run": {}, "/data": {}},
                         lookup=lambda name: source)
    by_dest = {p["Destination"]: p for p in points}
    assert by_dest["/s"]["Name"] == "shared" and by_dest["/s"]["RW"] is False
    assert by_dest["/s"]["From"] == "c1"
    assert by_dest["/b"]["Source"] == "/x"          # the bind wins over volumes-from
    assert "/run" not in by_dest                    # the tmpfs covers the image's VOLUME
    assert by_dest["/data"]["Name"] == "" and by_dest["/extra"]["Type"] == "volume"
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /d"):
        mounts.plan({"Binds": ["/a:/d"], "Mounts": [{"Type": "volume", "Target": "/d"}]},
                    None, None)
    with pytest.raises(InvalidArgument, match="invalid mode: rshared"):
        mounts.plan({"VolumesFrom": ["c1:rshared"]}, None, None, lookup=lambda n: source)


def test_oci_and_inspect():
    points = [
        {"Type": "volume", "Name": "v", "Source": "/v/_data", "Destination": "/v",
         "Driver": "local", "Mode": "z", "RW": False, "Propagation": ""},
        {"Type": "bind", "Name": "", "Source": "/h", "Destination": "/h", "Driver": "",
         "Mode": "", "RW": True, "Propagation": "rshared"},
        {"Type": "tmpfs", "Name": "", "Source": "", "Destination": "/t", "Driver": "",
         "Mode": "", "RW": True, "Propagation": "", "TmpfsOptions": ["nosuid", "size=1m"]},
    ]
    assert mounts.oci_mounts(points) == [
        {"destination": "/v", "type": "bind", "source": "/v/_data",
         "options": ["rbind", "ro", "rprivate"]},
        {"destination": "/h", "type": "bind", "source": "/h", "options": ["rbind", "rshared"]},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "size=1m"]}]
    shown = mounts.inspect_mounts(points)
    assert shown[0] == {"Type": "volume", "Name": "v", "Source": "/v/_data",
                        "Destination": "/v", "Driver": "local", "Mode": "z", "RW": False,
                        "Propagation": ""}
    assert shown[1] == {"Type": "bind", "Source": "/h", "Destination": "/h", "Mode": "",
                        "RW": True, "Propagation": "rshared"}


def test_order_mounts_parents_first_and_last_wins():
    defaults = [{"destination": "/proc"}, {"destination": "/dev"}]
    own = [{"destination": "/etc/hosts", "source": "skiff"}, {"destination": "/a/b/c"},
           {"destination": "/etc"}, {"destination": "/etc/hosts", "source": "user"}]
    ordered = order_mounts(defaults + own, 2)
    assert [m["destination"] for m in ordered] == ["/proc", "/dev", "/etc", "/etc/hosts",
                                                   "/a/b/c"]
    assert ordered[3]["source"] == "user"


def test_copy_up_helpers(tmp_path):
    from skiff.engine.copyup import might_have, resolve_in_root

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "data").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    (upper / "link").symlink_to("/data")
    (upper / "out").symlink_to("../../../../etc")
    overlay = [{"destination": "/", "type": "overlay", "source": "overlay",
                "options": [f"lowerdir={lower}", f"upperdir={upper}", "workdir=/w"]}]
    assert might_have(overlay, "/data") and might_have(overlay, "/etc")
    assert might_have(overlay, "/link/x")        # through a symlink: the child decides
    assert not might_have(overlay, "/nothing/here")
    assert might_have([{"destination": "/", "type": "nfs"}], "/anything")
    root = str(upper)
    assert resolve_in_root(root, "/link") is None                 # /data is not in this root
    assert resolve_in_root(root, "/out") == str(upper / "etc")    # '..' stops at the root
    assert resolve_in_root(root, "/etc/../etc") == str(upper / "etc")


def test_propagation_rules():
    info = ("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
            "40 27 0:50 / /srv/shared rw shared:7 - tmpfs tmpfs rw\n"
            "41 27 0:51 / /srv/slave rw master:7 - tmpfs tmpfs rw\n")
    assert mounts.propagation_problem("/srv/shared/x", "rshared", info) is None
    assert mounts.propagation_problem("/srv/slave/x", "rslave", info) is None
    assert mounts.propagation_problem("/srv/slave", "rshared", info) == \
        "path /srv/slave is mounted on /srv/slave but it is not a shared mount"
    assert mounts.propagation_problem("/var/tmp/d", "rslave", info) == \
        "path /var/tmp/d is mounted on / but it is not a shared or slave mount"
    assert mounts.propagation_problem("/var/tmp/d", "rprivate", info) is None
    assert mounts.rootfs_propagation([{"options": ["rbind", "rslave"]}]) == "rslave"
    assert mounts.rootfs_propagation([{"options": ["rbind", "rslave"]},
                                      {"options": ["rbind", "shared"]}]) == "rshared"
    assert mounts.rootfs_propagation([{"options": ["rbind", "rprivate"]}]) is None


def test_copy_up_shifts_owners_through_id_maps():
    from skiff.engine.copyup import map_id

    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert map_id(0, maps) == 100000 and map_id(1000, maps) == 101000
    assert map_id(100005, maps) == 100005      # already shifted (the container's writes)
    assert map_id(70000, maps) == 65534        # outside the maps: the overflow id
    assert map_id(1000, None) == 1000
