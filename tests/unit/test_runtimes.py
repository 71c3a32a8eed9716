"""--runtime as values: the daemon's table of runtimes, daemon.json + flags, and the bundle
made portable for runc and crun."""

import argparse

import pytest

from skiff.api import config as daemon_config
from skiff.engine.runtimes import ConfigError, RuntimeTable, parse_add_runtime
from skiff.errors import InvalidArgument, RuntimeFailure
from skiff.runtime.plan import INIT_ANNOTATION, ROOTFS_MOUNTS_ANNOTATION, SECCOMP_ANNOTATION
from skiff.runtime.portable import default_seccomp, portable_config


def which(found):
    return lambda name: f"/usr/sbin/{name}" if name in found else None


def test_builtins_only_when_installed_and_docker_errors():
    table = RuntimeTable({"kata": {"path": "/opt/kata", "runtimeArgs": ["--x"]}},
                         which=which({"runc"}))
    assert table.info() == {"DefaultRuntime": "skiff", "Runtimes": {
        "skiff": {"path": "skiff-runtime"}, "runc": {"path": "/usr/sbin/runc"},
        "kata": {"path": "/opt/kata", "runtimeArgs": ["--x"]}}}
    assert table.choose({}) == "skiff"
    assert table.choose({"Runtime": "runc"}) == "runc"
    with pytest.raises(InvalidArgument, match="unknown or invalid runtime name: crun"):
        table.choose({"Runtime": "crun"})
    with pytest.raises(InvalidArgument, match="--init"):
        table.choose({"Runtime": "runc", "Init": True})
    assert table.monitor_spec("skiff") is None
    assert table.monitor_spec("kata")["args"] == ["--x"]
    with pytest.raises(ConfigError, match="runtime name 'runc' is reserved"):
        RuntimeTable({"runc": {"path": "/x"}}, which=which(set()))
    with pytest.raises(ConfigError, match="specified default runtime 'crun' does not exist"):
        RuntimeTable({}, "crun", which=which({"runc"}))


def test_daemon_json_and_flags():
    args = argparse.Namespace(add_runtime=["mine=/opt/mine"], default_runtime="skiff")
    daemon_config.merge_runtimes(args, {"runtimes": {"k": {"path": "/k"}},
                                        "default-runtime": "k"}, {"default_runtime": "skiff"})
    assert args.runtimes == {"k": {"path": "/k"}, "mine": {"path": "/opt/mine"}}
    assert args.default_runtime == "k"
    args = argparse.Namespace(add_runtime=[], default_runtime="runc")   # the flag wins
    daemon_config.merge_runtimes(args, {"default-runtime": "k"}, {"default_runtime": "skiff"})
    assert args.default_runtime == "runc"
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        parse_add_runtime("nopath")


def _config(**annotations):
    return {"root": {"path": "rootfs"}, "process": {"args": ["true"]},
            "linux": {"cgroupsPath": "skiff/x"},
            "annotations": {ROOTFS_MOUNTS_ANNOTATION: "[]", "keep": "me", **annotations}}


def test_portable_config_points_at_the_mounted_rootfs_and_drops_our_annotations():
    out = portable_config(_config(), "/b/rootfs")
    assert out["root"]["path"] == "/b/rootfs"
    assert out["annotations"] == {"keep": "me"}
    assert out["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert portable_config(_config(**{SECCOMP_ANNOTATION: "unconfined"}),
                           "/r")["linux"].get("seccomp") is None
    with pytest.raises(RuntimeFailure, match="--init"):
        portable_config(_config(**{INIT_ANNOTATION: "true"}), "/r")


def test_default_seccomp_as_oci_rules():
    rules = default_seccomp(["CAP_CHOWN"])["syscalls"]
    blocked = {n for r in rules if "args" not in r and r["errnoRet"] == 1 for n in r["names"]}
    assert {"mount", "unshare", "reboot", "ptrace", "bpf"} <= blocked
    clone = [r for r in rules if r["names"] == ["clone"]]
    assert len(clone) == 7   # one rule per new-namespace flag: any of them is refused
    assert all(r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" for r in clone)
    # a capability given lets its system calls through, as with docker's profile
    with_admin = default_seccomp(["CAP_SYS_ADMIN"])["syscalls"]
    assert "mount" not in {n for r in with_admin for n in r["names"]}
