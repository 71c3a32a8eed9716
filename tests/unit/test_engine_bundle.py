import pytest

from skiff.engine import bundle, names
from skiff.errors import InvalidArgument


def test_image_cmd_used_when_none_given():
    args, env, cwd = bundle.container_process({"Cmd": ["sh"], "Env": ["A=1"]}, {})
    assert args == ["sh"] and cwd == "/"
    assert env[0].startswith("PATH=") and "A=1" in env


def test_cmd_replaces_image_cmd_and_keeps_entrypoint():
    image = {"Entrypoint": ["/init"], "Cmd": ["serve"]}
    assert bundle.container_process(image, {"Cmd": ["x"]})[0] == ["/init", "x"]


def test_entrypoint_given_drops_image_cmd():
    image = {"Entrypoint": ["/init"], "Cmd": ["serve"]}
    assert bundle.container_process(image, {"Entrypoint": ["ls"]})[0] == ["ls"]
    assert bundle.container_process(image, {"Entrypoint": [""], "Cmd": ["id"]})[0] == ["id"]


def test_no_command_is_an_error():
    with pytest.raises(InvalidArgument, match="No command specified"):
        bundle.container_process({}, {})


def test_relative_workdir_refused():
    with pytest.raises(InvalidArgument):
        bundle.container_process({"Cmd": ["sh"]}, {"WorkingDir": "tmp"})


def test_env_later_wins_in_place_and_bare_keys_dropped():
    assert bundle.merge_env(["A=1", "B=2"], ["A=3", "C"]) == ["A=3", "B=2"]


def test_resolv_conf_drops_loopback_resolvers():
    text = "nameserver 127.0.0.53\nsearch example.org\n"
    out = bundle.resolv_conf(text)
    assert "127.0.0.53" not in out and "search example.org" in out
    assert "nameserver 8.8.8.8" in out
    assert bundle.resolv_conf("nameserver 10.0.0.2\n") == "nameserver 10.0.0.2\n"


def test_spec_carries_rootfs_mounts_and_cgroup():
    spec = bundle.build_spec(args=["true"], env=[], cwd="/", user=(0, 0, []), hostname="h",
                             tty=False, open_stdin=False,
                             rootfs_mounts=[{"type": "overlay"}], extra_mounts=[],
                             cgroups_path="skiff/x")
    assert spec["linux"]["cgroupsPath"] == "skiff/x"
    assert spec["annotations"][bundle.ROOTFS_MOUNTS_ANNOTATION] == '[{"type": "overlay"}]'
    nofile = spec["process"]["rlimits"][0]
    import resource
    assert nofile["hard"] <= resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_names():
    assert names.validate_name("/web-1") == "web-1"
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        names.validate_name("bad name")
    taken = {"x"}
    name = names.random_name(lambda n: n in taken)
    assert "_" in name and names.VALID_NAME.match(name)
