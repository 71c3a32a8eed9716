"""`skiff run`'s resource and security flags -> HostConfig, as the docker CLI sends them."""

import json

import pytest

from skiff.cli import commands
from skiff.cli import config as cfg
from skiff.cli.flags import parse
from skiff.cli.spec import BY_NAME


def host(*argv):
    opts, args = parse(BY_NAME["run"], list(argv) + ["busybox"], commands.validators("run"))
    body, _params = cfg.build_create(opts, args[0], args[1:], detach=False,
                                     lookup=lambda k: None)
    return body["HostConfig"]


def test_resource_flags():
    hc = host("-m", "64m", "--memory-swap", "-1", "--memory-reservation", "32m",
              "--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0", "--cpuset-mems", "0",
              "--pids-limit", "100", "--blkio-weight", "300", "--shm-size", "8m",
              "--ulimit", "nofile=100:200", "--ulimit", "core=0", "--oom-kill-disable",
              "--memory-swappiness", "10", "--oom-score-adj", "500",
              "--device-read-bps", "/dev/sda:1mb", "--device-write-iops", "/dev/sda:10",
              "--blkio-weight-device", "/dev/sda:200")
    assert hc["Memory"] == 64 << 20 and hc["MemorySwap"] == -1
    assert hc["MemoryReservation"] == 32 << 20 and hc["NanoCpus"] == 1_500_000_000
    assert hc["CpuShares"] == 512 and hc["CpusetCpus"] == "0" and hc["CpusetMems"] == "0"
    assert hc["PidsLimit"] == 100 and hc["BlkioWeight"] == 300 and hc["ShmSize"] == 8 << 20
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200},
                             {"Name": "core", "Soft": 0, "Hard": 0}]
    assert hc["OomKillDisable"] is True and hc["MemorySwappiness"] == 10
    assert hc["OomScoreAdj"] == 500
    assert hc["BlkioDeviceReadBps"] == [{"Path": "/dev/sda", "Rate": 1 << 20}]
    assert hc["BlkioDeviceWriteIOps"] == [{"Path": "/dev/sda", "Rate": 10}]
    assert hc["BlkioWeightDevice"] == [{"Path": "/dev/sda", "Weight": 200}]


def test_nothing_given_sends_nothing():
    hc = host()
    for key in ("MemorySwap", "NanoCpus", "PidsLimit", "Ulimits", "SecurityOpt", "Devices",
                "OomKillDisable", "MemorySwappiness", "Sysctls", "IpcMode"):
        assert key not in hc


def test_security_flags(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    hc = host("--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--privileged",
              "--security-opt", "no-new-privileges", "--security-opt", f"seccomp={profile}",
              "--read-only", "--tmpfs", "/run:size=1m", "--device", "/dev/sda:/dev/xvda:r",
              "--device", "/dev/kmsg", "--device-cgroup-rule", "c 1:3 rwm",
              "--group-add", "10", "--sysctl", "net.ipv4.ip_forward=1",
              "--ipc", "host", "--pid", "container:web", "--uts", "host")
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"] and hc["Privileged"]
    assert hc["SecurityOpt"] == ["no-new-privileges",
                                 'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']
    assert hc["ReadonlyRootfs"] and hc["Tmpfs"] == {"/run": "size=1m"}
    assert hc["Devices"] == [
        {"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/kmsg", "PathInContainer": "/dev/kmsg",
         "CgroupPermissions": "rwm"}]
    assert hc["DeviceCgroupRules"] == ["c 1:3 rwm"] and hc["GroupAdd"] == ["10"]
    assert hc["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert (hc["IpcMode"], hc["PidMode"], hc["UTSMode"]) == ("host", "container:web", "host")


@pytest.mark.parametrize("argv, message", [
    (("--cpus", "x"), 'invalid argument "x" for "--cpus" flag'),
    (("--ulimit", "nofile"), "invalid ulimit argument: nofile"),
    (("--device", "/dev/sda:/dev/xvda:rx"), "invalid device mode: rx"),
    (("--device-read-bps", "sda:1mb"), "bad format: sda:1mb"),
    (("--sysctl", "x"), "sysctl must be in the format of key=value"),
    (("--security-opt", "seccomp=/no/such/profile.json"),
     "opening seccomp profile (/no/such/profile.json) failed"),
])
def test_bad_flag_values(argv, message):
    with pytest.raises(ValueError) as info:
        host(*argv)
    assert message in str(info.value)


def test_kernel_memory_flag_is_gone_as_in_docker_23():
    with pytest.raises(Exception) as info:
        host("--kernel-memory", "64m")
    assert "unknown flag: --kernel-memory" in str(info.value)
