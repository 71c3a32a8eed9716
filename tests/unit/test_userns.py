"""User namespaces as values: subordinate id files, the maps, config.json changes."""

import pytest

from skiff.engine.userns import (UsernsRemap, check_mode, id_mappings, next_free_start,
                                 parse_ranges)
from skiff.errors import InvalidArgument
from skiff.runtime.portable import mapped_root, portable_config

SUBUID = "alice:100000:65536\n# comment\ndockremap:165536:65536\n1001:300000:10\nbad line\n"


def test_ranges_by_name_or_number_and_where_a_new_one_goes():
    assert parse_ranges(SUBUID, "dockremap", 999) == [(165536, 65536)]
    assert parse_ranges(SUBUID, "bob", 1001) == [(300000, 10)]
    assert parse_ranges(SUBUID, "carol", 5) == []
    assert next_free_start(SUBUID, "") == 300010
    assert next_free_start("", "") == 100000
    assert id_mappings([(100000, 10), (500, 5)]) == [
        {"containerID": 0, "hostID": 100000, "size": 10},
        {"containerID": 10, "hostID": 500, "size": 5}]


def _remap():
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return UsernsRemap("dockremap", maps, maps)


def _spec():
    return {"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
            "mounts": [{"destination": "/sys", "type": "sysfs", "source": "sysfs"}],
            "annotations": {}, "process": {"args": ["true"]}}


def test_apply_adds_the_namespace_and_maps_unless_host():
    spec = _spec()
    _remap().apply(spec, {}, "runc")
    assert {"type": "user"} in spec["linux"]["namespaces"]
    assert spec["linux"]["uidMappings"][0]["hostID"] == 100000
    assert mapped_root(spec) == (100000, 100000)
    spec = _spec()
    _remap().apply(spec, {"UsernsMode": "host"}, "skiff")
    assert "uidMappings" not in spec["linux"] and mapped_root(spec) is None


@pytest.mark.parametrize("hc,runtime,message", [
    ({"Privileged": True}, "runc", "privileged mode is incompatible"),
    ({"NetworkMode": "host"}, "runc", "host's network namespace"),
])
def test_apply_refuses_what_docker_refuses(hc, runtime, message):
    with pytest.raises(InvalidArgument, match=message):
        _remap().apply(_spec(), hc, runtime)


def test_userns_mode_values():
    for ok in ("", "host", "private"):
        check_mode({"UsernsMode": ok})
    with pytest.raises(InvalidArgument, match="invalid USER mode: container:x"):
        check_mode({"UsernsMode": "container:x"})


def test_sysfs_is_bound_when_the_network_namespace_is_the_engines():
    spec = _spec()
    _remap().apply(spec, {}, "runc")
    spec["linux"]["namespaces"].append({"type": "network", "path": "/run/skiff/netns/x"})
    out = portable_config(spec, "/r")
    assert out["mounts"][0]["type"] == "bind" and "ro" in out["mounts"][0]["options"]
    spec["linux"]["namespaces"][-1] = {"type": "network"}   # its own: sysfs mounts fine
    assert portable_config(spec, "/r")["mounts"][0]["type"] == "sysfs"


def test_skiff_runtime_plan_for_a_user_namespace():
    """The runtime's plan: the maps, BecomeRoot after the cgroup join with the bind sources
    opened before it, devices bound from the host, a joined network namespace entered by
    the runtime around the clone."""
    from skiff.linux import ns
    from skiff.runtime import plan as P
    from skiff.runtime import steps as S
    from skiff.runtime.host import Host
    from skiff.oci.spec import default_spec

    spec = default_spec(args=["true"], env=[], cwd="/", user=(0, 0, []), hostname="h",
                        terminal=False, rlimits=[])
    _remap().apply(spec, {}, "skiff")
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"] + [
        {"type": "network", "path": "/run/skiff/netns/x"}]
    spec["linux"]["cgroupsPath"] = "/skiff-test/x"
    plan = P.build(spec, bundle="/b", container_id="x", host=Host(False, []))
    assert plan.clone_flags & ns.CLONE_NEWUSER and not plan.clone_flags & ns.CLONE_NEWNET
    assert plan.id_maps[0][0]["hostID"] == 100000
    assert plan.parent_joins == [("network", "/run/skiff/netns/x")]
    kinds = [type(st) for st in plan.steps]
    assert S.MakeDevice not in kinds and S.JoinNamespace not in kinds
    at = kinds.index(S.BecomeRoot)
    assert kinds[at - 1] is S.OpenBindSources
    assert all(k is not S.Mount for k in kinds[:at])
    opened = plan.steps[at - 1].paths
    assert "/dev/null" in opened and "/b/rootfs" in opened
