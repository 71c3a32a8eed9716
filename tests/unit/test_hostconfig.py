"""HostConfig -> config.json (skiff.engine.hostconfig), as values: docker's checks, defaults
and wording, with the machine described by a fake."""

import json

import pytest

from skiff.engine import bundle, hostconfig
from skiff.errors import InvalidArgument
from skiff.oci import spec as oci_spec
from skiff.oci.capabilities import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from skiff.runtime import cgroups

MiB = 1 << 20
HELD = tuple(c for c in ALL_CAPABILITIES if c != "CAP_SYS_RESOURCE")


class Facts:
    def __init__(self, **kw):
        self.cgroup_v2 = False
        self.ncpu = 4
        self.cpus = "0-3"
        self.mems = "0"
        self.swap_limit = True
        self.oom_kill_disable = True
        self.swappiness = True
        self.blkio_weight = True
        self.blkio_throttle = True
        self.held_capabilities = HELD
        self.hard = {"nofile": 4096}
        self.devices = {"/dev/sda": ("b", 8, 0, 0o660, 0, 6),
                        "/dev/kmsg": ("c", 1, 11, 0o644, 0, 0)}
        self.__dict__.update(kw)

    def rlimit_hard(self, name):
        return self.hard.get(name, -1)

    def device(self, path):
        if path not in self.devices:
            raise FileNotFoundError(2, "No such file or directory")
        return self.devices[path]

    def all_devices(self):
        return sorted(self.devices.items())


def translate(hc, facts=None, lookup=None):
    spec = oci_spec.default_spec(["sh"], ["PATH=/bin"])
    warnings = hostconfig.apply(spec, hc, facts=facts or Facts(), lookup=lookup)
    return spec, warnings


def res(spec):
    return spec["linux"]["resources"]


# --- memory -----------------------------------------------------------------------------------

def test_memory_swap_defaults_to_twice_the_limit():
    spec, _ = translate({"Memory": 64 * MiB})
    assert res(spec)["memory"] == {"limit": 64 * MiB, "swap": 128 * MiB}
    spec, _ = translate({"Memory": 64 * MiB, "MemorySwap": -1})
    assert res(spec)["memory"]["swap"] == -1
    spec, _ = translate({"Memory": 64 * MiB, "MemorySwap": 64 * MiB,
                         "MemoryReservation": 32 * MiB, "MemorySwappiness": 10})
    assert res(spec)["memory"] == {"limit": 64 * MiB, "swap": 64 * MiB,
                                   "reservation": 32 * MiB, "swappiness": 10}


@pytest.mark.parametrize("hc, message", [
    ({"Memory": 4 * MiB}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MiB, "MemorySwap": 32 * MiB},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 64 * MiB},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemoryReservation": 1 * MiB}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 32 * MiB, "MemoryReservation": 64 * MiB},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"NanoCpus": 10**9, "CpuPeriod": 100000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 5 * 10**9}, "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs "
                              "available"),
    ({"CpuPeriod": 500}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than "
                         "1s (i.e. 1000000)"),
    ({"CpuQuota": 999}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpusetCpus": "0-7"}, "Requested CPUs are not available - requested 0-7, available: "
                            "0-3"),
    ({"CpusetCpus": "a"}, "Invalid value a for cpuset cpus"),
    ({"CpusetMems": "1"}, "Requested memory nodes are not available - requested 1, "
                          "available: 0"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"BlkioDeviceReadBps": [{"Path": "/dev/kmsg", "Rate": 1}]}, "/dev/kmsg is not a block "
                                                                 "device"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 20, "Hard": 10}]},
     "ulimit soft limit must be less than or equal to hard limit: 20 > 10"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    ({"CapAdd": ["SYS_RESOURCE"]}, "cannot add capability CAP_SYS_RESOURCE: the daemon does "
                                   "not hold it"),
    ({"CapAdd": ["NOPE"]}, 'unknown capability: "CAP_NOPE"'),
    ({"SecurityOpt": ["bogus"]}, "invalid --security-opt 1: 'bogus'"),
    ({"SecurityOpt": ["seccomp={not json"]}, "decoding seccomp profile failed"),
    ({"Sysctls": {"kernel.panic": "1"}}, "sysctl 'kernel.panic' is not allowed"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "sysctl 'vm.swappiness' is not allowed"),
    ({"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}},
     "sysctl 'kernel.shmmax' is not allowed in host IPC namespace"),
    ({"NetworkMode": "host", "Sysctls": {"net.core.somaxconn": "1"}},
     "sysctl 'net.core.somaxconn' not allowed in host network namespace"),
    ({"PidMode": "bogus"}, "invalid PidMode: bogus"),
    ({"Devices": [{"PathOnHost": "/dev/nope", "PathInContainer": "/dev/nope",
                   "CgroupPermissions": "rwm"}]},
     'error gathering device information while adding custom device "/dev/nope": no such '
     'file or directory'),
    ({"Devices": [{"PathOnHost": "/dev/sda", "CgroupPermissions": "rx"}]},
     "invalid device permissions: rx"),
    ({"DeviceCgroupRules": ["c 1:x rwm"]}, "invalid device cgroup format 'c 1:x rwm'"),
])
def test_refused_as_docker_refuses(hc, message):
    with pytest.raises(InvalidArgument) as info:
        translate(hc)
    assert message in str(info.value)


def test_kernel_memory_is_ignored_with_dockers_warning():
    spec, warnings = translate({"KernelMemory": 64 * MiB})
    assert "memory" not in res(spec)
    assert warnings == ["Specifying a kernel memory limit is deprecated and will be removed in "
                        "a future release."]


def test_what_the_kernel_cannot_do_is_dropped_with_a_warning():
    facts = Facts(swap_limit=False, oom_kill_disable=False, blkio_weight=False,
                  swappiness=False)
    spec, warnings = translate({"Memory": 64 * MiB, "MemorySwap": 128 * MiB,
                                "OomKillDisable": True, "BlkioWeight": 300,
                                "MemorySwappiness": 0}, facts)
    assert res(spec)["memory"] == {"limit": 64 * MiB}
    assert "blockIO" not in res(spec)
    assert warnings == [
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
        "Memory limited without swap.",
        "Your kernel does not support memory swappiness capabilities or the cgroup is not "
        "mounted. Memory swappiness discarded.",
        "Your kernel does not support OomKillDisable. OomKillDisable discarded.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight "
        "discarded."]


def test_oom_kill_disable_without_a_limit_warns():
    spec, warnings = translate({"OomKillDisable": True})
    assert res(spec)["memory"] == {"disableOOMKiller": True}
    assert warnings[0].startswith("OOM killer is disabled for the container, but no memory")


# --- cpu, pids, block I/O -------------------------------------------------------------------------

def test_cpus_become_quota_and_period():
    spec, _ = translate({"NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "1,3",
                         "CpusetMems": "0"})
    assert res(spec)["cpu"] == {"period": 100000, "quota": 150000, "shares": 512,
                                "cpus": "1,3", "mems": "0"}
    spec, _ = translate({"CpuPeriod": 50000, "CpuQuota": 25000})
    assert res(spec)["cpu"] == {"period": 50000, "quota": 25000}


def test_cpu_shares_are_clamped_with_a_warning():
    spec, warnings = translate({"CpuShares": 1})
    assert res(spec)["cpu"]["shares"] == 2
    assert warnings == ["Changing requested CPUShares of 1 to minimum allowed of 2"]
    spec, _ = translate({"CpuShares": 1 << 20})
    assert res(spec)["cpu"]["shares"] == 262144


@pytest.mark.parametrize("given, limit", [(100, 100), (0, -1), (-1, -1)])
def test_pids_limit(given, limit):
    spec, _ = translate({"PidsLimit": given})
    assert res(spec)["pids"] == {"limit": limit}
    assert "pids" not in res(translate({})[0])


def test_block_io_by_device_numbers():
    spec, _ = translate({"BlkioWeight": 300,
                         "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
                         "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}],
                         "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 10}]})
    io = res(spec)["blockIO"]
    assert io == {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 10}]}
    assert cgroups.resource_writes({"blockIO": io}, v2=False) == [
        ("blkio", "blkio.weight", "300"), ("blkio", "blkio.weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 10")]
    assert cgroups.resource_writes({"blockIO": io}, v2=True) == [
        ("io", "io.weight", "default 300"), ("io", "io.weight", "8:0 200"),
        ("io", "io.max", "8:0 rbps=1048576 wiops=10")]


def test_v1_oom_control_write():
    assert ("memory", "memory.oom_control", "1") in cgroups.resource_writes(
        {"memory": {"limit": 64 * MiB, "disableOOMKiller": True}}, v2=False)


# --- shm, ulimits ---------------------------------------------------------------------------------

def _mount(spec, dest):
    return [m for m in spec["mounts"] if m["destination"] == dest]


def test_shm_size_and_default():
    spec, _ = translate({"ShmSize": 8 * MiB})
    assert _mount(spec, "/dev/shm")[0]["options"][-1] == f"size={8 * MiB}"
    spec, _ = translate({})
    assert _mount(spec, "/dev/shm")[0]["options"][-1] == f"size={64 * MiB}"


def test_ulimits_replace_defaults_and_stay_under_the_daemons_hard_limit():
    spec, _ = translate({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 4096},
                                     {"Name": "nproc", "Soft": 50, "Hard": 60}]})
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 50, "hard": 60}]
    with pytest.raises(InvalidArgument, match="hard limit 4097 is above the daemon's own"):
        translate({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 4097}]})
    with pytest.raises(InvalidArgument, match="hard limit unlimited"):
        translate({"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": -1}]})
    # a daemon holding CAP_SYS_RESOURCE may raise it
    spec, _ = translate({"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 8192}]},
                        Facts(held_capabilities=ALL_CAPABILITIES))
    assert spec["process"]["rlimits"][0]["hard"] == 8192


# --- security ---------------------------------------------------------------------------------

def caps_of(spec):
    c = spec["process"]["capabilities"]
    assert c["bounding"] == c["effective"] == c["permitted"]
    return c["bounding"]


def test_cap_add_and_drop():
    spec, _ = translate({"CapAdd": ["NET_ADMIN"], "CapDrop": ["chown", "CAP_KILL"]})
    caps = caps_of(spec)
    assert "CAP_NET_ADMIN" in caps and "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    spec, _ = translate({"CapDrop": ["ALL"], "CapAdd": ["NET_RAW"]})
    assert caps_of(spec) == ["CAP_NET_RAW"]
    spec, _ = translate({"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]})
    assert set(caps_of(spec)) == set(HELD) - {"CAP_SYS_ADMIN"}
    spec, _ = translate({})
    assert caps_of(spec) == list(DEFAULT_CAPABILITIES)


def test_privileged_gets_what_the_daemon_holds_and_no_confinement():
    spec, _ = translate({"Privileged": True})
    assert caps_of(spec) == list(HELD)
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    assert spec["annotations"]["org.skiff.seccomp"] == "unconfined"
    assert "ro" not in _mount(spec, "/sys")[0]["options"]
    assert "ro" not in _mount(spec, "/sys/fs/cgroup")[0]["options"]
    assert res(spec)["devices"] == [{"allow": True, "access": "rwm"}]
    assert {d["path"] for d in spec["linux"]["devices"]} == {"/dev/sda", "/dev/kmsg"}


def test_security_opts():
    spec, _ = translate({"SecurityOpt": ["no-new-privileges"]})
    assert spec["process"]["noNewPrivileges"] is True
    spec, _ = translate({"SecurityOpt": ["no-new-privileges:true"]})
    assert spec["process"]["noNewPrivileges"] is True
    spec, _ = translate({"SecurityOpt": ["no-new-privileges=false"]})
    assert spec["process"]["noNewPrivileges"] is False
    spec, _ = translate({"SecurityOpt": ["seccomp=unconfined"]})
    assert spec["annotations"]["org.skiff.seccomp"] == "unconfined"
    spec, _ = translate({"SecurityOpt": ["systempaths=unconfined"]})
    assert spec["linux"]["maskedPaths"] == []


DOCKER_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
         "includes": {"arches": ["amd64", "SCMP_ARCH_X86_64"]}},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    ]}


def test_docker_seccomp_profile_is_resolved_for_the_container():
    spec, _ = translate({"SecurityOpt": ["seccomp=" + json.dumps(DOCKER_PROFILE)]})
    got = spec["linux"]["seccomp"]
    assert got["defaultAction"] == "SCMP_ACT_ERRNO" and got["defaultErrnoRet"] == 1
    names = [s["names"] for s in got["syscalls"]]
    assert ["mount"] not in names and ["clone"] in names
    assert ["mkdir"] in names and got["syscalls"][-1]["errnoRet"] == 13
    old = hostconfig.docker_profile_to_oci(DOCKER_PROFILE, ["CAP_SYS_ADMIN"],
                                           arch="SCMP_ARCH_X86_64", kernel=(4, 4))
    names = [s["names"] for s in old["syscalls"]]
    assert ["mount"] in names and ["clone"] not in names and ["ptrace"] not in names
    assert old["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def test_readonly_rootfs_and_tmpfs():
    spec, _ = translate({"ReadonlyRootfs": True, "Tmpfs": {"/run": "", "/data": "size=1m,exec"}})
    assert spec["root"]["readonly"] is True
    assert _mount(spec, "/run")[0] == {"destination": "/run", "type": "tmpfs",
                                       "source": "tmpfs", "options": ["nosuid", "nodev",
                                                                      "noexec"]}
    assert _mount(spec, "/data")[0]["options"] == ["nosuid", "nodev", "size=1m", "exec"]


def test_devices_and_device_cgroup_rules():
    spec, _ = translate({"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/xvda",
                                      "CgroupPermissions": "r"}],
                         "DeviceCgroupRules": ["c 1:11 r", "b *:* m", "a"]})
    assert spec["linux"]["devices"] == [{"path": "/dev/xvda", "type": "b", "major": 8,
                                         "minor": 0, "fileMode": 0o660, "uid": 0, "gid": 6}]
    assert res(spec)["devices"][-4:] == [
        {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
        {"allow": True, "type": "c", "access": "r", "major": 1, "minor": 11},
        {"allow": True, "type": "b", "access": "m"},
        {"allow": True, "access": "rwm"}]


def test_group_add():
    spec, _ = translate({"GroupAdd": ["10", 20]})
    assert spec["process"]["user"]["additionalGids"] == [10, 20]
    with pytest.raises(InvalidArgument, match="Unable to find group audio: no matching "
                                              "entries in group file"):
        translate({"GroupAdd": ["audio"]})
    spec = oci_spec.default_spec(["sh"], [])
    hostconfig.apply(spec, {"GroupAdd": ["audio", "7"]}, facts=Facts(),
                     group_file="root:x:0:\n# comment\naudio:x:29:\nlp:x:7:\n")
    assert spec["process"]["user"]["additionalGids"] == [29, 7]


def test_group_names_come_from_the_images_layers(tmp_path):
    lower1, lower2, upper = (tmp_path / n for n in ("l1", "l2", "up"))
    for d in (lower1, lower2, upper):
        (d / "etc").mkdir(parents=True)
    (lower2 / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    mounts = [{"destination": "/", "type": "overlay", "source": "overlay",
               "options": [f"lowerdir={lower1}:{lower2}", f"upperdir={upper}",
                           "workdir=/w"]}]
    spec = bundle.build_spec(args=["sh"], env=[], cwd="/", user=(0, 0, []), hostname="h",
                             tty=False, open_stdin=False, rootfs_mounts=mounts,
                             extra_mounts=[], cgroups_path="skiff/x", facts=Facts(),
                             host_config={"GroupAdd": ["staff"]})
    assert spec["process"]["user"]["additionalGids"] == [50]
    (upper / "etc" / "group").write_text("staff:x:51:\n")
    assert bundle.image_file(mounts, "etc/group") == "staff:x:51:\n"


def test_namespaced_sysctls():
    spec, _ = translate({"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1",
                                     "fs.mqueue.msg_max": "10",
                                     "kernel.domainname": "example"}})
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1",
                                       "fs.mqueue.msg_max": "10",
                                       "kernel.domainname": "example"}


class Record:
    def __init__(self, pid, running=True):
        self.state = {"Pid": pid, "Running": running}


def kinds(spec):
    return {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}


def test_host_and_container_namespace_modes():
    spec = oci_spec.default_spec(["sh"], [], hostname="box")
    hostconfig.apply(spec, {"IpcMode": "host", "PidMode": "host", "UTSMode": "host"},
                     facts=Facts())
    assert set(kinds(spec)) == {"network", "mount", "cgroup"}
    assert "hostname" not in spec
    records = {"web": Record(4242), "dead": Record(0, running=False)}
    spec, _ = translate({"IpcMode": "container:web", "PidMode": "container:web"},
                        lookup=records.__getitem__)
    assert kinds(spec)["ipc"] == "/proc/4242/ns/ipc"
    assert kinds(spec)["pid"] == "/proc/4242/ns/pid"
    assert kinds(spec)["uts"] is None
    with pytest.raises(InvalidArgument, match="cannot join IPC of a non running container: "
                                              "dead"):
        translate({"IpcMode": "container:dead"}, lookup=records.__getitem__)
    spec, _ = translate({"IpcMode": "shareable"})
    assert "ipc" in kinds(spec)


def test_build_spec_applies_host_config():
    warnings = []
    spec = bundle.build_spec(args=["sh"], env=[], cwd="/", user=(0, 0, []), hostname="h",
                             tty=False, open_stdin=False, rootfs_mounts=[], extra_mounts=[],
                             cgroups_path="skiff/x", facts=Facts(), warnings=warnings,
                             host_config={"Memory": 64 * MiB, "KernelMemory": 1,
                                          "PidsLimit": 5})
    assert spec["linux"]["resources"]["pids"] == {"limit": 5}
    assert spec["linux"]["resources"]["memory"]["limit"] == 64 * MiB
    assert len(warnings) == 1


def test_init_is_an_annotation_that_puts_a_fork_before_the_exec():
    from skiff.runtime import plan, steps
    from tests.unit.test_runtime_plan import v1_host
    spec, _ = translate({"Init": True})
    assert spec["annotations"]["org.skiff.init"] == "true"
    spec["linux"]["cgroupsPath"] = "skiff/x"
    built = plan.build(spec, bundle="/b", container_id="x", host=v1_host())
    assert [type(s) for s in built.steps[-3:]] == [steps.SetCapabilities, steps.ForkInit,
                                                   steps.Exec]
    plain, _ = translate({})
    plain["linux"]["cgroupsPath"] = "skiff/x"
    built = plan.build(plain, bundle="/b", container_id="x", host=v1_host())
    assert not any(isinstance(s, steps.ForkInit) for s in built.steps)
