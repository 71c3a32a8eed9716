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
    ({}, "skiff", "not supported by the skiff runtime"),
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
