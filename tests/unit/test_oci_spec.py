import json

import pytest

from skiff.errors import InvalidArgument
from skiff.oci import spec
from skiff.oci.mount import Mount, mounts_from_list, mounts_to_list
from skiff.oci.spec import (
    ALL_CAPABILITIES, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS,
    apply_capability_changes, default_mounts, default_spec, lookup_user,
    normalize_capability, parse_user, resolve_env,
)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment:x:5:5::/:
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin

nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
dup:x:1000:1000::/home/first:/bin/sh
dup:x:1001:1001::/home/second:/bin/sh
short:x:77
"""
GROUP = """\
root:x:0:
wheel:x:10:root,www-data
www-data:x:33:
users:x:100:www-data,nobody
staff:x:50:dup
"""


# --- Mount -----------------------------------------------------------------------------

def test_mount_round_trip():
    mount = Mount("overlay", "overlay", "/", ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"])
    doc = mount.to_dict()
    assert doc == {"destination": "/", "type": "overlay", "source": "overlay",
                   "options": ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"]}
    assert Mount.from_dict(json.loads(json.dumps(doc))) == mount
    assert mounts_from_list(mounts_to_list([mount, mount])) == [mount, mount]
    doc["options"].append("ro")
    assert "ro" not in mount.options  # to_dict copies


def test_mount_helpers_and_defaults():
    assert Mount.from_dict({"destination": "/x"}) == Mount("", "", "/x", [])
    assert Mount.bind("/src", "/dst", readonly=True).readonly
    assert Mount.bind("/src", "/dst").options == ["rbind", "rw"]


@pytest.mark.parametrize("doc", [
    None, [], {}, {"destination": ""}, {"destination": 5},
    {"destination": "/x", "options": "ro"}, {"destination": "/x", "options": [1]},
    {"destination": "/x", "type": 1},
])
def test_mount_rejects(doc):
    with pytest.raises(InvalidArgument):
        Mount.from_dict(doc)


def test_mounts_from_list_rejects_non_list():
    with pytest.raises(InvalidArgument):
        mounts_from_list({"destination": "/"})


# --- capabilities ------------------------------------------------------------------------

def test_capability_tables():
    assert len(DEFAULT_CAPABILITIES) == 14
    assert len(ALL_CAPABILITIES) == 41
    assert ALL_CAPABILITIES[0] == "CAP_CHOWN"
    assert ALL_CAPABILITIES[21] == "CAP_SYS_ADMIN"
    assert ALL_CAPABILITIES[29] == "CAP_AUDIT_WRITE"
    assert ALL_CAPABILITIES[40] == "CAP_CHECKPOINT_RESTORE"
    assert set(DEFAULT_CAPABILITIES) <= set(ALL_CAPABILITIES)
    assert spec.CAPABILITY_NUMBERS["CAP_NET_ADMIN"] == 12


def test_normalize_capability():
    assert normalize_capability("net_admin") == "CAP_NET_ADMIN"
    assert normalize_capability("CAP_SYS_ADMIN") == "CAP_SYS_ADMIN"
    assert normalize_capability("all") == "ALL"
    for bad in ("CAP_FOO", "", "cap_", None):
        with pytest.raises(InvalidArgument, match="unknown capability"):
            normalize_capability(bad)


def test_capability_changes():
    assert apply_capability_changes() == list(DEFAULT_CAPABILITIES)
    assert apply_capability_changes(privileged=True) == list(ALL_CAPABILITIES)
    changed = apply_capability_changes(add=["NET_ADMIN", "net_admin"], drop=["chown"])
    assert "CAP_NET_ADMIN" in changed and "CAP_CHOWN" not in changed
    assert changed.count("CAP_NET_ADMIN") == 1
    assert apply_capability_changes(drop=["ALL"], add=["kill"]) == ["CAP_KILL"]
    everything = apply_capability_changes(add=["ALL"], drop=["SYS_ADMIN"])
    assert len(everything) == 40 and "CAP_SYS_ADMIN" not in everything
    with pytest.raises(InvalidArgument):
        apply_capability_changes(add=["BOGUS"])


# --- default spec ------------------------------------------------------------------------

def test_default_spec_shape():
    doc = default_spec(["sh", "-c", "true"], ["PATH=/bin"], cwd="/work",
                       user=(1000, 1000, [10, 20]), hostname="abc123", terminal=True)
    json.dumps(doc)  # plain JSON data only
    assert doc["ociVersion"] == "1.0.2"
    assert doc["root"] == {"path": "rootfs", "readonly": False}
    assert doc["hostname"] == "abc123"
    process = doc["process"]
    assert process["args"] == ["sh", "-c", "true"] and process["env"] == ["PATH=/bin"]
    assert process["cwd"] == "/work" and process["terminal"] is True
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}
    caps = process["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == list(
        DEFAULT_CAPABILITIES)
    assert "inheritable" not in caps and "ambient" not in caps
    assert process["rlimits"][0]["type"] == "RLIMIT_NOFILE"
    linux = doc["linux"]
    assert [n["type"] for n in linux["namespaces"]] == [
        "pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    rules = linux["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"} in rules


def test_default_spec_options():
    doc = default_spec(["true"], [], cgroup_namespace=False, readonly_rootfs=True,
                       capabilities=["CAP_KILL"], rlimits=[], no_new_privileges=True)
    assert "hostname" not in doc
    assert "cgroup" not in [n["type"] for n in doc["linux"]["namespaces"]]
    assert doc["root"]["readonly"] is True
    assert doc["process"]["capabilities"]["bounding"] == ["CAP_KILL"]
    assert doc["process"]["rlimits"] == [] and doc["process"]["noNewPrivileges"] is True
    assert doc["process"]["user"] == {"uid": 0, "gid": 0}


def test_default_spec_returns_fresh_data():
    first = default_spec(["a"], [])
    first["mounts"][0]["options"].append("ro")
    first["linux"]["maskedPaths"].clear()
    first["process"]["capabilities"]["bounding"].clear()
    first["linux"]["resources"]["devices"][0]["allow"] = True
    second = default_spec(["a"], [])
    assert "ro" not in second["mounts"][0]["options"]
    assert second["linux"]["maskedPaths"] == list(MASKED_PATHS)
    assert second["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert second["linux"]["resources"]["devices"][0]["allow"] is False


def test_default_mounts():
    mounts = {m["destination"]: m for m in default_mounts()}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                            "/dev/mqueue", "/dev/shm"]
    assert mounts["/proc"]["type"] == "proc"
    assert {"nosuid", "strictatime", "mode=755", "size=65536k"} <= set(
        mounts["/dev"]["options"])
    assert {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"} <= set(
        mounts["/dev/pts"]["options"])
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert mounts["/dev/mqueue"]["type"] == "mqueue"
    assert mounts["/dev/shm"]["type"] == "tmpfs"
    assert "size=65536k" in mounts["/dev/shm"]["options"]
    for doc in default_mounts():
        Mount.from_dict(doc)  # every default is a valid Mount


def test_masked_and_readonly_paths():
    assert "/proc/kcore" in MASKED_PATHS and "/sys/firmware" in MASKED_PATHS
    assert "/sys/devices/virtual/powercap" in MASKED_PATHS
    assert READONLY_PATHS == ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger")


def test_default_devices():
    paths = {d["path"]: (d["major"], d["minor"]) for d in spec.DEFAULT_DEVICES}
    assert paths == {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                     "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


# --- users ---------------------------------------------------------------------------------

@pytest.mark.parametrize("user, expected", [
    ("", (0, 0, [10])),                  # root, and root's supplementary groups
    (None, (0, 0, [10])),
    ("root", (0, 0, [10])),
    ("www-data", (33, 33, [10, 100])),
    ("33", (33, 33, [10, 100])),         # numeric uid found in passwd
    ("nobody", (65534, 65534, [100])),
    ("4242", (4242, 0, [])),             # numeric, not in passwd: taken as is
    ("4242:4343", (4242, 4343, [])),
    ("www-data:users", (33, 100, [])),   # explicit group: no supplementary groups
    ("www-data:0", (33, 0, [])),
    ("www-data:777", (33, 777, [])),
    ("nobody:wheel", (65534, 10, [])),
    ("dup", (1000, 1000, [50])),         # first match wins
    ("short", (77, 0, [])),              # truncated record: missing fields read as 0
    ("0:0:ignored", (0, 0, [])),
])
def test_parse_user(user, expected):
    assert parse_user(user, PASSWD, GROUP) == expected


def test_lookup_user_home():
    assert lookup_user("www-data", PASSWD, GROUP).home == "/var/www"
    assert lookup_user("4242", PASSWD, GROUP).home == "/"
    assert lookup_user("", None, None).home == "/"


def test_parse_user_without_files():
    assert parse_user("", None, None) == (0, 0, [])
    assert parse_user("1000:1000", None, None) == (1000, 1000, [])
    assert parse_user("1000", "", "") == (1000, 0, [])


@pytest.mark.parametrize("user, message", [
    ("ghost", "unable to find user ghost: no matching entries in passwd file"),
    ("ghost:0", "unable to find user ghost: no matching entries in passwd file"),
    ("root:ghosts", "unable to find group ghosts: no matching entries in group file"),
    ("-1", "uids and gids must be in range 0-2147483647"),
    ("2147483648", "uids and gids must be in range 0-2147483647"),
    ("0:-5", "uids and gids must be in range 0-2147483647"),
    ("1e3", "unable to find user 1e3: no matching entries in passwd file"),
    (" 0", "unable to find user  0: no matching entries in passwd file"),
])
def test_parse_user_errors(user, message):
    with pytest.raises(InvalidArgument) as info:
        parse_user(user, PASSWD, GROUP)
    assert str(info.value) == message


def test_parse_user_without_passwd_file_and_a_name():
    with pytest.raises(InvalidArgument, match="unable to find user app"):
        parse_user("app", None, None)


# --- environment ------------------------------------------------------------------------

def test_resolve_env():
    image = ["PATH=/usr/bin", "LANG=C", "EMPTY="]
    assert resolve_env(image, None) == image
    assert resolve_env(None, ["A=1"]) == ["A=1"]
    assert resolve_env(image, ["LANG=en", "NEW=1", "A=b=c"]) == [
        "PATH=/usr/bin", "LANG=en", "EMPTY=", "NEW=1", "A=b=c"]
    assert resolve_env(image, ["A=1", "A=2"]) == image + ["A=2"]  # later wins
    assert resolve_env(image, ["LANG"]) == ["PATH=/usr/bin", "EMPTY="]  # bare key unsets
    assert resolve_env(image, ["MISSING"]) == image
    assert resolve_env(image, ["LANG", "LANG=x"]) == ["PATH=/usr/bin", "LANG=x", "EMPTY="]
    assert image == ["PATH=/usr/bin", "LANG=C", "EMPTY="]  # inputs untouched


def test_resolve_env_with_lookup():
    environ = {"HOME": "/root", "EMPTY": ""}
    assert resolve_env(["HOME=/"], ["HOME", "EMPTY", "NOPE"], environ.get) == [
        "HOME=/root", "EMPTY="]
