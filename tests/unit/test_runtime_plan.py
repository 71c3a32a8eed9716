"""The runtime's planner, as values: config.json in, ordered setup steps out (no kernel)."""

import inspect
import json

import pytest

from skiff.errors import InvalidArgument
from skiff.linux import mount as m
from skiff.linux import ns
from skiff.oci.spec import default_spec
from skiff.runtime import cgroups, host, plan, steps as S
from skiff.runtime.cli import UsageError, parse

V1_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_CGROUP = """\
9:name=systemd:/user.slice
4:memory:/mon
2:cpu,cpuacct:/
0::/
"""
V2_MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
"""
V2_CGROUP = "0::/system.slice/skiffd.service\n"

DEFAULT_CAPS = 0xA80425FB
SYS_ADMIN = 1 << 21


def v1_host():
    return host.parse(V1_MOUNTINFO, V1_CGROUP)


def config(**changes):
    spec = default_spec(["sh", "-c", "true"], ["PATH=/usr/bin:/bin"], hostname="box",
                        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}])
    spec["linux"]["cgroupsPath"] = "skiff/c1"
    for key, value in changes.items():
        spec[key] = value
    return spec


def build(spec=None, **kw):
    kw.setdefault("host", v1_host())
    return plan.build(spec or config(), bundle="/b", container_id="c1", **kw)


def kinds(p):
    return [type(s).__name__ for s in p.steps]


def index(p, cls, nth=0):
    found = [i for i, s in enumerate(p.steps) if isinstance(s, cls)]
    return found[nth]


# --- host discovery ----------------------------------------------------------------------

def test_host_parse_v1_uses_every_v1_hierarchy_and_skips_hybrid_v2():
    h = v1_host()
    assert not h.cgroup_v2
    assert h.hierarchies == [
        host.Hierarchy("/sys/fs/cgroup/cpu,cpuacct", "/", ("cpu", "cpuacct"), "/"),
        host.Hierarchy("/sys/fs/cgroup/memory", "/", ("memory",), "/mon"),
        host.Hierarchy("/sys/fs/cgroup/systemd", "/", ("name=systemd",), "/user.slice"),
    ]
    assert h.hierarchy("cpuacct").name == "cpu,cpuacct"


def test_host_parse_pure_v2():
    h = host.parse(V2_MOUNTINFO, V2_CGROUP)
    assert h.cgroup_v2
    assert h.hierarchies == [host.Hierarchy("/sys/fs/cgroup", "/", (),
                                            "/system.slice/skiffd.service")]


def test_hierarchy_dir_strips_the_mount_root():
    h = host.Hierarchy("/sys/fs/cgroup/memory", "/docker/abc", ("memory",), "/docker/abc/x")
    assert h.dir_for("/docker/abc/x/skiff/c1") == "/sys/fs/cgroup/memory/x/skiff/c1"


# --- cgroups -----------------------------------------------------------------------------

def test_relative_cgroups_path_is_under_our_own_cgroup_in_each_hierarchy():
    dirs = [d for _h, d in cgroups.paths("skiff/c1", "c1", v1_host())]
    assert dirs == ["/sys/fs/cgroup/cpu,cpuacct/skiff/c1", "/sys/fs/cgroup/memory/mon/skiff/c1",
                    "/sys/fs/cgroup/systemd/user.slice/skiff/c1"]


def test_absolute_and_empty_cgroups_paths():
    h = v1_host()
    assert [d for _h, d in cgroups.paths("/abs/c1", "c1", h)][1] == "/sys/fs/cgroup/memory/abs/c1"
    assert [d for _h, d in cgroups.paths(None, "c9", h)][1] == "/sys/fs/cgroup/memory/mon/c9"
    v2 = host.parse(V2_MOUNTINFO, V2_CGROUP)
    assert cgroups.paths("skiff/c1", "c1", v2)[0][1] == \
        "/sys/fs/cgroup/system.slice/skiffd.service/skiff/c1"


@pytest.mark.parametrize("bad", ["../../etc", "..", "system.slice:skiff:c1"])
def test_cgroups_path_that_escapes_or_is_systemd_is_refused(bad):
    with pytest.raises(InvalidArgument):
        cgroups.paths(bad, "c1", v1_host())


def test_resource_writes_v1_and_v2():
    res = {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "cpu": {"shares": 512,
           "quota": 50000, "period": 100000, "cpus": "0"}, "pids": {"limit": 100},
           "devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 136, "access": "rwm"}]}
    assert cgroups.resource_writes(res, v2=False) == [
        ("memory", "memory.limit_in_bytes", str(64 << 20)),
        ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
        ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"), ("cpuset", "cpuset.cpus", "0"),
        ("pids", "pids.max", "100"), ("devices", "devices.deny", "a"),
        ("devices", "devices.allow", "c 1:3 rwm"), ("devices", "devices.allow", "c 136:* rwm"),
    ]
    assert cgroups.resource_writes(res, v2=True) == [
        ("memory", "memory.max", str(64 << 20)), ("memory", "memory.swap.max", str(64 << 20)),
        ("cpu", "cpu.weight", "20"), ("cpu", "cpu.max", "50000 100000"),
        ("cpuset", "cpuset.cpus", "0"), ("pids", "pids.max", "100"),
        ("", cgroups.DEVICE_PROGRAM, cgroups.device_program(res["devices"])),
    ]
    assert cgroups.resource_writes(None, v2=False) == []


# --- mount options -----------------------------------------------------------------------

def test_parse_options_follows_runcs_table():
    o = m.parse_options(["rbind", "ro", "nosuid", "rprivate", "mode=755", "size=64k"])
    assert o == m.MountOptions(m.MS_BIND | m.MS_REC | m.MS_RDONLY | m.MS_NOSUID,
                               [m.MS_PRIVATE | m.MS_REC], "mode=755,size=64k")
    assert m.parse_options(["ro", "rw", "exec", "noexec"]).flags == m.MS_NOEXEC
    assert m.parse_options(None) == m.MountOptions(0, [], "")


# --- the plan ----------------------------------------------------------------------------

def test_docker_default_config_plans_namespaces_cgroups_and_order():
    p = build()
    assert p.clone_flags == (ns.CLONE_NEWNS | ns.CLONE_NEWPID | ns.CLONE_NEWNET
                             | ns.CLONE_NEWIPC | ns.CLONE_NEWUTS)
    assert p.pid_ns_path is None
    assert p.rootfs == "/b/rootfs"
    assert p.steps[0] == S.JoinCgroups([
        "/sys/fs/cgroup/cpu,cpuacct/skiff/c1/tasks", "/sys/fs/cgroup/memory/mon/skiff/c1/tasks",
        "/sys/fs/cgroup/systemd/user.slice/skiff/c1/tasks"])
    assert p.steps[1] == S.Unshare(ns.CLONE_NEWCGROUP)
    assert p.steps[2] == S.SetPropagation("/", m.MS_SLAVE | m.MS_REC)
    assert p.steps[3] == S.Mount("/b/rootfs", "/", "", m.MS_BIND | m.MS_REC, create="")
    assert p.steps[4] == S.Mount("proc", "/proc", "proc", m.MS_NOSUID | m.MS_NOEXEC | m.MS_NODEV)
    pivot = index(p, S.PivotRoot)
    assert all(not isinstance(s, (S.MaskPath, S.ReadonlyPath, S.SetUser)) for s in p.steps[:pivot])
    assert all(not isinstance(s, (S.Mount, S.MakeDevice)) for s in p.steps[pivot:])
    order = [S.PivotRoot, S.SetHostname, S.LinkUp, S.MaskPath, S.ReadonlyPath, S.SetRlimit,
             S.DropBounding, S.SetUser, S.SetCapabilities, S.SetAmbient, S.Chdir,
             S.ResolveCommand, S.LoadSeccomp, S.Exec]
    positions = [index(p, cls) for cls in order]
    assert positions == sorted(positions)
    assert isinstance(p.steps[-1], S.Exec)
    assert p.steps[-1] == S.Exec(("sh", "-c", "true"), ("PATH=/usr/bin:/bin",))
    assert p.seccomp == ("default", tuple(sorted(default_spec(["x"], [])["process"][
        "capabilities"]["bounding"])))


def test_default_devices_and_dev_symlinks_are_made_before_pivot():
    p = build()
    devices = [s for s in p.steps if isinstance(s, S.MakeDevice)]
    assert [d.path for d in devices] == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                         "/dev/urandom", "/dev/tty"]
    assert devices[0] == S.MakeDevice("/dev/null", "c", 1, 3, 0o666, 0, 0)
    assert S.Symlink("pts/ptmx", "/dev/ptmx", True) in p.steps
    assert S.Symlink("/proc/self/fd", "/dev/fd") in p.steps
    assert index(p, S.MakeDevice) < index(p, S.PivotRoot)


def test_bind_dev_means_no_device_nodes():
    spec = config()
    spec["mounts"] = [{"destination": "/dev", "type": "bind", "source": "/dev",
                       "options": ["rbind"]}]
    assert not any(isinstance(s, S.MakeDevice) for s in build(spec).steps)


def test_seccomp_needs_sys_admin_until_loaded_then_one_final_capset():
    p = build()
    caps = [s for s in p.steps if isinstance(s, S.SetCapabilities)]
    assert caps[0] == S.SetCapabilities(DEFAULT_CAPS | SYS_ADMIN, DEFAULT_CAPS | SYS_ADMIN, 0)
    assert caps[1] == S.SetCapabilities(DEFAULT_CAPS, DEFAULT_CAPS, 0)
    assert p.steps[-3:] == [S.LoadSeccomp("default", 0), caps[1], p.steps[-1]]
    assert S.DropBounding(DEFAULT_CAPS) in p.steps


def test_default_filter_lets_through_what_granted_capabilities_govern():
    from skiff.runtime import profile
    blocked = profile.default_rules(("CAP_CHOWN",))
    assert "mount" in blocked[0][0] and "ptrace" in blocked[0][0]
    assert [r[0] for r in blocked[1:]] == [("clone",), ("personality",), ("clone3",)]
    admin = profile.default_rules(("CAP_SYS_ADMIN", "CAP_SYS_PTRACE"))
    assert "mount" not in admin[0][0] and "ptrace" not in admin[0][0]
    assert "reboot" in admin[0][0]
    assert [r[0] for r in admin[1:]] == [("personality",)]
    spec = config()
    spec["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert "CAP_SYS_ADMIN" in build(spec).seccomp[1]


def test_no_new_privileges_puts_seccomp_right_before_exec():
    spec = config()
    spec["process"]["noNewPrivileges"] = True
    p = build(spec)
    assert kinds(p)[-3:] == ["NoNewPrivs", "LoadSeccomp", "Exec"]
    assert [s for s in p.steps if isinstance(s, S.SetCapabilities)] == [
        S.SetCapabilities(DEFAULT_CAPS, DEFAULT_CAPS, 0)]


def test_seccomp_profile_and_unconfined():
    spec = config()
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    assert build(spec).seccomp == ("profile", spec["linux"]["seccomp"])
    spec = config(annotations={plan.SECCOMP_ANNOTATION: "unconfined"})
    p = build(spec)
    assert p.seccomp is None
    assert "LoadSeccomp" not in kinds(p)
    assert [s for s in p.steps if isinstance(s, S.SetCapabilities)] == [
        S.SetCapabilities(DEFAULT_CAPS, DEFAULT_CAPS, 0)]


def test_rootfs_mounts_annotation_replaces_the_self_bind():
    overlay = {"destination": "/", "type": "overlay", "source": "overlay",
               "options": ["lowerdir=/l", "upperdir=/u", "workdir=/w"]}
    p = build(config(annotations={plan.ROOTFS_MOUNTS_ANNOTATION: json.dumps([overlay])}))
    assert p.steps[3] == S.Mount("overlay", "/", "overlay", 0,
                                 "lowerdir=/l,upperdir=/u,workdir=/w", create="")
    assert not any(isinstance(s, S.Mount) and s.source == "/b/rootfs" for s in p.steps)


def test_bind_mounts_get_a_remount_for_their_flags():
    spec = config()
    spec["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": "hosts",
                           "options": ["rbind", "ro", "rprivate"]})
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv",
                           "options": ["rbind", "rw"]})
    p = build(spec)
    assert S.Mount("/b/hosts", "/etc/hosts", "", m.MS_BIND | m.MS_REC, "",
                   m.MS_BIND | m.MS_REMOUNT | m.MS_RDONLY, (m.MS_PRIVATE | m.MS_REC,),
                   "auto") in p.steps
    assert S.Mount("/srv", "/data", "", m.MS_BIND | m.MS_REC, "", 0, (), "auto") in p.steps


def test_cgroup_mount_on_v1_mounts_each_hierarchy_read_only():
    p = build()
    cg = [s for s in p.steps if isinstance(s, S.Mount) and s.target.startswith("/sys/fs/cgroup")]
    ro = m.MS_RDONLY | m.MS_NOSUID | m.MS_NOEXEC | m.MS_NODEV | m.MS_RELATIME
    assert cg[0] == S.Mount("tmpfs", "/sys/fs/cgroup", "tmpfs", ro & ~m.MS_RDONLY, "mode=755")
    assert cg[1] == S.Mount("cgroup", "/sys/fs/cgroup/cpu,cpuacct", "cgroup", ro, "cpu,cpuacct")
    assert cg[3] == S.Mount("systemd", "/sys/fs/cgroup/systemd", "cgroup", ro, "name=systemd")
    assert cg[-1] == S.Mount("tmpfs", "/sys/fs/cgroup", "", m.MS_REMOUNT | ro, "mode=755",
                             create="")
    assert S.Symlink("cpu,cpuacct", "/sys/fs/cgroup/cpu") in p.steps


def test_namespace_paths():
    spec = config()
    spec["linux"]["namespaces"] = [{"type": "mount"}, {"type": "pid"}, {"type": "uts"},
                                   {"type": "network", "path": "/run/netns/n1"}]
    p = build(spec)
    assert p.clone_flags == ns.CLONE_NEWNS | ns.CLONE_NEWPID | ns.CLONE_NEWUTS
    assert S.JoinNamespace("network", "/run/netns/n1") in p.steps
    assert "LinkUp" not in kinds(p)
    spec["linux"]["namespaces"][1] = {"type": "pid", "path": "/proc/42/ns/pid"}
    assert build(spec).pid_ns_path == "/proc/42/ns/pid"


@pytest.mark.parametrize("change, message", [
    (lambda s: s["linux"].update(namespaces=[{"type": "pid"}, {"type": "uts"}]),
     "mount namespace"),
    (lambda s: s["linux"]["namespaces"].append({"type": "user"}), "uidMappings"),
    (lambda s: s["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"}),
     "joining a user namespace"),
    (lambda s: s["linux"].update(namespaces=[{"type": "mount"}]), "UTS namespace"),
    (lambda s: s["process"].update(terminal=True), "console socket"),
    (lambda s: s["process"].update(args=[]), "process.args"),
    (lambda s: s["process"]["rlimits"].append({"type": "RLIMIT_BOGUS"}), "rlimit"),
])
def test_configs_that_cannot_be_run_are_refused_up_front(change, message):
    spec = config()
    change(spec)
    with pytest.raises(InvalidArgument, match=message):
        build(spec)


def test_terminal_user_rlimits_cwd_and_path():
    spec = config()
    spec["process"].update(terminal=True, cwd="/tmp", user={"uid": 1000, "gid": 100,
                           "additionalGids": [5, 6]}, env=["A=1", "PATH=/opt/bin"],
                           consoleSize={"height": 33, "width": 101})
    p = build(spec, console=True)
    assert index(p, S.PivotRoot) < index(p, S.Terminal) < index(p, S.MaskPath)
    assert S.Terminal(1000, 100, 33, 101) in p.steps
    assert S.SetUser(1000, 100, (5, 6)) in p.steps
    assert S.SetRlimit("RLIMIT_NOFILE", 7, 1024, 1024) in p.steps
    assert S.Chdir("/tmp") in p.steps
    assert S.ResolveCommand("sh", "/opt/bin") in p.steps
    assert S.Umask(0o022) in p.steps


def test_wait_start_sits_between_lookup_and_seccomp():
    p = build(wait_start=True)
    assert index(p, S.ResolveCommand) < index(p, S.WaitStart) < index(p, S.LoadSeccomp)


def test_capabilities_absent_means_untouched():
    spec = config()
    del spec["process"]["capabilities"]
    p = build(spec)
    assert not any(isinstance(s, (S.DropBounding, S.SetCapabilities, S.SetAmbient))
                   for s in p.steps)


def test_steps_are_values():
    a = S.Mount("proc", "/proc", "proc", 2)
    assert a == S.Mount("proc", "/proc", "proc", 2, "", 0, (), "dir", True)
    assert a != S.Mount("proc", "/proc", "proc", 3)
    assert a.describe() == 'error mounting "proc" to rootfs at "/proc"'
    with pytest.raises(TypeError):
        S.Mount("proc")


def run_device_program(program: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Interpret the few eBPF instructions device_program emits (the kernel's view)."""
    import struct
    from skiff.linux import bpf as B
    ctx = [(sum({"r": B.ACC_READ, "w": B.ACC_WRITE, "m": B.ACC_MKNOD}[c] for c in access)
            << 16) | (B.DEV_BLOCK if kind == "b" else B.DEV_CHAR), major, minor]
    regs = [0] * 11
    pc = 0
    while True:
        code, regbyte, off, imm = struct.unpack_from("<BBhi", program, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == B.LDX_W:
            regs[dst] = ctx[off // 4]
        elif code == B.AND32_K:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == B.RSH32_K:
            regs[dst] >>= imm
        elif code == B.MOV32_X:
            regs[dst] = regs[src]
        elif code == B.MOV32_K:
            regs[dst] = imm
        elif code == B.JNE32_K:
            if regs[dst] != imm & 0xFFFFFFFF:
                pc += off
        elif code == B.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_v2_device_program_decides_like_v1_rules():
    from skiff.oci.spec import DEFAULT_DEVICE_CGROUP_RULES
    prog = cgroups.device_program(DEFAULT_DEVICE_CGROUP_RULES)
    allowed = [("c", 1, 3, "rw"), ("c", 1, 9, "r"), ("c", 136, 4, "rw"), ("c", 5, 2, "rwm"),
               ("b", 8, 0, "m"), ("c", 4, 64, "m"), ("c", 10, 200, "rw")]
    denied = [("b", 8, 0, "r"), ("c", 1, 11, "w"), ("c", 4, 64, "rw"), ("b", 254, 0, "rw"),
              ("c", 1, 1, "r")]
    assert [run_device_program(prog, *case) for case in allowed] == [1] * len(allowed)
    assert [run_device_program(prog, *case) for case in denied] == [0] * len(denied)
    later_wins = cgroups.device_program([{"allow": True, "type": "a", "access": "rwm"},
                                         {"allow": False, "type": "c", "major": 1,
                                          "minor": 11, "access": "w"}])
    assert run_device_program(later_wins, "c", 1, 11, "r") == 1
    assert run_device_program(later_wins, "c", 1, 11, "w") == 0
    assert run_device_program(cgroups.device_program([]), "c", 1, 3, "r") == 0


def test_device_rule_text():
    assert cgroups.device_rule({"allow": False, "access": "rwm"}) == "a"
    assert cgroups.device_rule({"type": "b", "major": 8, "access": "r"}) == "b 8:* r"


# --- public surface and CLI parsing --------------------------------------------------------

def test_public_surface():
    import skiff.runtime as rt
    from skiff.runtime import launch
    assert rt.__all__ == ["spawn", "start", "cleanup"]
    params = inspect.signature(launch.spawn).parameters
    assert list(params) == ["bundle", "container_id", "stdio", "console_socket", "state_root",
                            "wait_start", "preserve_fds"]
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in list(params)[2:])
    assert list(inspect.signature(launch.cleanup).parameters) == [
        "bundle_or_spec", "container_id", "state_root"]


def test_cli_parses_runc_command_lines():
    o = parse(["--root", "/r", "--log=/l", "--log-format", "json", "create", "--bundle", "/b",
               "--pid-file=/p", "--console-socket", "/s", "c1"])
    assert (o.root, o.log, o.log_format, o.verb, o.bundle, o.pid_file, o.console_socket,
            o.args) == ("/r", "/l", "json", "create", "/b", "/p", "/s", ["c1"])
    o = parse(["kill", "c1", "KILL"])
    assert (o.verb, o.args) == ("kill", ["c1", "KILL"])
    o = parse(["run", "-d", "-b", "/b", "c1"])
    assert o.detach and o.bundle == "/b"
    assert parse(["delete", "--force", "c1"]).force
    assert parse(["state", "c1"]).root == "/run/skiff-runtime"
    for bad in (["bogus", "c1"], ["start"], ["create", "--nope", "c1"], ["state", "a", "b"]):
        with pytest.raises(UsageError):
            parse(bad)
