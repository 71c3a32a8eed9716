"""A Docker create request's HostConfig -> changes to a runtime config.json, as dockerd makes
them (its checks, its defaults, its wording).

    warnings = hostconfig.apply(spec, host_config, facts=HostFacts(), lookup=engine.get)

`apply` changes `spec` (from `skiff.oci.spec.default_spec`) in place and returns docker's
warnings (a limit the kernel cannot enforce is dropped with a warning, as docker does); a
value docker refuses, or an explicit request this host cannot meet (a capability or a hard
rlimit the daemon does not hold itself), raises InvalidArgument with docker's words.

Everything it needs to know about the machine comes from `facts` (a `HostFacts`, or any
object with the same attributes), so that the translation is a pure function of its inputs
and unit-tested as values. `lookup(name)` returns a container record (with `.state["Pid"]`
and `.state["Running"]`) for `container:NAME` namespace modes.

What is covered: Memory, MemorySwap, MemoryReservation, MemorySwappiness, KernelMemory (as
Docker >= 23 treats it: dropped with a warning; API >= 1.42 clients never send it),
OomKillDisable, OomScoreAdj, NanoCpus, CpuShares, CpuPeriod, CpuQuota, CpusetCpus,
CpusetMems, PidsLimit, BlkioWeight, BlkioWeightDevice, BlkioDevice{Read,Write}{Bps,IOps},
ShmSize, Ulimits, CapAdd, CapDrop, Privileged, SecurityOpt (no-new-privileges,
seccomp=unconfined|JSON profile), ReadonlyRootfs, Tmpfs, Devices, DeviceCgroupRules,
GroupAdd, Sysctls, IpcMode, PidMode, UTSMode, Init.
"""

from __future__ import annotations

import json
import os
import stat

from skiff.errors import InvalidArgument
from skiff.oci import capabilities as _caps

MIN_MEMORY = 6 * 1024 * 1024          # docker's linuxMinMemory
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
SECCOMP_ANNOTATION = "org.skiff.seccomp"
INIT_ANNOTATION = "org.skiff.init"   # --init: skiff-runtime keeps PID 1 as a reaper

# docker's opts.ValidateSysctl: these names, and everything below these prefixes, belong to a
# namespace the container owns (kernel.* and fs.mqueue.*: IPC; net.*: network).
SYSCTL_IPC_NAMES = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
SYSCTL_IPC_PREFIXES = ("fs.mqueue.",)
SYSCTL_NET_PREFIX = "net."
SYSCTL_UTS_NAMES = ("kernel.domainname", "kernel.hostname")

ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
           "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as")

TMPFS_DEFAULTS = ["nosuid", "nodev", "noexec"]


class HostFacts:
    """What `apply` needs to know about this machine, read when first asked."""

    def __init__(self, cgroup_root: str = "/sys/fs/cgroup"):
        self.cgroup_root = cgroup_root
        self._cache: dict = {}

    def _once(self, key, compute):
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def cgroup_v2(self) -> bool:
        return self._once("v2", lambda: os.path.exists(
            os.path.join(self.cgroup_root, "cgroup.controllers")))

    def _v1_file(self, controller: str, name: str) -> bool:
        return os.path.exists(os.path.join(self.cgroup_root, controller, name))

    @property
    def ncpu(self) -> int:
        return self._once("ncpu", lambda: len(os.sched_getaffinity(0)))

    @property
    def cpus(self) -> str:
        return self._once("cpus", lambda: _read_first(
            [os.path.join(self.cgroup_root, "cpuset.cpus.effective"),
             os.path.join(self.cgroup_root, "cpuset", "cpuset.effective_cpus"),
             os.path.join(self.cgroup_root, "cpuset", "cpuset.cpus"),
             "/sys/devices/system/cpu/online"]))

    @property
    def mems(self) -> str:
        return self._once("mems", lambda: _read_first(
            [os.path.join(self.cgroup_root, "cpuset.mems.effective"),
             os.path.join(self.cgroup_root, "cpuset", "cpuset.effective_mems"),
             os.path.join(self.cgroup_root, "cpuset", "cpuset.mems"),
             "/sys/devices/system/node/online"]) or "0")

    @property
    def swap_limit(self) -> bool:
        if self.cgroup_v2:
            return True  # memory.swap.max: Debian's kernels have swap accounting on v2
        return self._once("swap", lambda: self._v1_file("memory",
                                                        "memory.memsw.limit_in_bytes"))

    @property
    def oom_kill_disable(self) -> bool:
        # cgroup v2 has no switch for the OOM killer
        return not self.cgroup_v2 and self._once(
            "oomctl", lambda: self._v1_file("memory", "memory.oom_control"))

    @property
    def swappiness(self) -> bool:
        return not self.cgroup_v2

    @property
    def blkio_weight(self) -> bool:
        if self.cgroup_v2:
            return self._once("bw", lambda: _v2_has(self.cgroup_root, "io.weight"))
        return self._once("bw", lambda: self._v1_file("blkio", "blkio.weight"))

    @property
    def blkio_throttle(self) -> bool:
        if self.cgroup_v2:
            return True  # io.max
        return self._once("bt", lambda: self._v1_file("blkio", "blkio.throttle.read_bps_device"))

    @property
    def held_capabilities(self) -> tuple[str, ...]:
        """The capabilities the daemon holds (its bounding set, which limits what any child
        can ever have)."""
        def compute():
            mask = 0
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("CapBnd:"):
                        mask = int(line.split()[1], 16)
            return tuple(c for c, n in _caps.CAPABILITY_NUMBERS.items() if mask >> n & 1)
        return self._once("caps", compute)

    def rlimit_hard(self, name: str) -> int:
        """The daemon's hard limit for RLIMIT_<NAME> (-1: unlimited)."""
        import resource
        value = resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))[1]
        return -1 if value == resource.RLIM_INFINITY else value

    def device(self, path: str) -> tuple[str, int, int, int, int, int]:
        """(type "c"|"b", major, minor, mode bits, uid, gid) of a device node on the host;
        OSError when missing, InvalidArgument when not a device."""
        st = os.stat(path)
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise InvalidArgument(f"error gathering device information while adding custom "
                                  f"device \"{path}\": not a device node")
        return kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode), \
            st.st_uid, st.st_gid

    def all_devices(self) -> list[tuple[str, tuple]]:
        """Every device node below /dev (for --privileged), as (path, device())."""
        def compute():
            out = []
            for top, dirs, files in os.walk("/dev"):
                dirs[:] = [d for d in dirs if d not in ("pts", "shm", "mqueue", "fd")]
                for name in files:
                    path = os.path.join(top, name)
                    if path in ("/dev/console", "/dev/ptmx") or os.path.islink(path):
                        continue
                    try:
                        out.append((path, self.device(path)))
                    except (OSError, InvalidArgument):
                        continue
            return sorted(out)
        return self._once("devices", compute)


def _read_first(paths) -> str:
    for p in paths:
        try:
            with open(p) as f:
                text = f.read().strip()
            if text:
                return text
        except OSError:
            continue
    return ""


def _v2_has(root: str, name: str) -> bool:
    # the root cgroup has no io.weight; look at any child where io is enabled
    try:
        for entry in os.scandir(root):
            if entry.is_dir() and os.path.exists(os.path.join(entry.path, name)):
                return True
    except OSError:
        pass
    return False


# --- numbers and lists ------------------------------------------------------------------------

def parse_list(text: str) -> set[int]:
    """A cpuset list ("0-3,5") -> the set of numbers; ValueError when malformed."""
    out: set[int] = set()
    if text.strip() == "":
        return out
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(text)
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise ValueError(text)
        out.update(range(a, b + 1))
    return out


def _int(hc: dict, key: str) -> int:
    value = hc.get(key)
    if value in (None, ""):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"invalid value for {key}: {value!r}") from None


# --- the translation --------------------------------------------------------------------------

def apply(spec: dict, hc: dict | None, *, facts=None, lookup=None,
          group_file: str | None = None) -> list[str]:
    """`group_file`: the text of the image's /etc/group (for GroupAdd names)."""
    hc = dict(hc or {})
    facts = facts if facts is not None else HostFacts()
    warnings: list[str] = []
    linux = spec.setdefault("linux", {})
    resources = linux.setdefault("resources", {})
    privileged = bool(hc.get("Privileged"))

    _namespaces(spec, hc, lookup)
    _memory(resources, hc, facts, warnings)
    _cpu(resources, hc, facts, warnings)
    _pids(resources, hc)
    _blkio(resources, hc, facts, warnings)
    _shm(spec, hc)
    _ulimits(spec, hc, facts)
    if hc.get("OomScoreAdj"):
        score = _int(hc, "OomScoreAdj")
        if not -1000 <= score <= 1000:
            raise InvalidArgument(f"Invalid value {score}, range for oom score adj is "
                                  "[-1000, 1000]")
        spec["process"]["oomScoreAdj"] = score
    _security(spec, hc, facts, privileged, warnings)
    _rootfs(spec, hc)
    _devices(spec, hc, facts, privileged)
    _groups(spec, hc, group_file)
    _sysctls(spec, hc)
    if hc.get("Init"):
        spec.setdefault("annotations", {})[INIT_ANNOTATION] = "true"
    return warnings


def resources(hc: dict, facts=None) -> tuple[dict, list[str]]:
    """Only the cgroup limits of `hc` (memory, cpu, pids, block I/O) as OCI
    `linux.resources`, with docker's checks and warnings (for `update`)."""
    facts = facts if facts is not None else HostFacts()
    out: dict = {}
    warnings: list[str] = []
    _memory(out, hc, facts, warnings)
    _cpu(out, hc, facts, warnings)
    _pids(out, hc)
    _blkio(out, hc, facts, warnings)
    return out, warnings


def _namespaces(spec: dict, hc: dict, lookup) -> None:
    """IpcMode, PidMode, UTSMode: "" / "private" / "shareable" (own), "host" (none: the
    host's), "container:NAME" (join NAME's)."""
    linux = spec["linux"]
    for key, kind in (("IpcMode", "ipc"), ("PidMode", "pid"), ("UTSMode", "uts")):
        mode = hc.get(key) or ""
        if mode == "" or (kind == "ipc" and mode in ("private", "shareable", "none")):
            continue
        entries = [n for n in linux.get("namespaces", []) if n.get("type") != kind]
        if mode == "host":
            linux["namespaces"] = entries
            if kind == "uts":
                spec.pop("hostname", None)
            continue
        if not mode.startswith("container:") or not mode[10:]:
            raise InvalidArgument(f"invalid {key}: {mode}")
        name = mode[10:]
        if lookup is None:
            raise InvalidArgument(f"{key} container:NAME is not supported here")
        record = lookup(name)
        state = getattr(record, "state", None) or {}
        if not state.get("Running") or not state.get("Pid"):
            raise InvalidArgument(f"cannot join {kind.upper()} of a non running container: "
                                  f"{name}")
        entries.append({"type": kind, "path": f"/proc/{int(state['Pid'])}/ns/{kind}"})
        linux["namespaces"] = entries
        if kind == "uts":
            spec.pop("hostname", None)


def _memory(resources: dict, hc: dict, facts, warnings: list) -> None:
    memory = _int(hc, "Memory")
    swap = _int(hc, "MemorySwap")
    reservation = _int(hc, "MemoryReservation")
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if memory == 0 and swap not in (0, -1):
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    if reservation and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if _int(hc, "KernelMemory"):
        # docker >= 23 ignores it (API >= 1.42 clients never send it; its CLI has no
        # --kernel-memory flag any more); runc ignores it too: kmem is gone from the kernel
        warnings.append("Specifying a kernel memory limit is deprecated and will be removed "
                        "in a future release.")
    mem: dict = {}
    if memory > 0:
        mem["limit"] = memory
        if swap == 0:
            swap = memory * 2   # docker's default: as much swap as memory
        if facts.swap_limit:
            mem["swap"] = swap
        elif hc.get("MemorySwap") not in (None, 0):
            warnings.append("Your kernel does not support swap limit capabilities or the "
                            "cgroup is not mounted. Memory limited without swap.")
    if reservation > 0:
        mem["reservation"] = reservation
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1:
        if not 0 <= int(swappiness) <= 100:
            raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range "
                                  "is 0-100")
        if facts.swappiness:
            mem["swappiness"] = int(swappiness)
        else:
            warnings.append("Your kernel does not support memory swappiness capabilities or "
                            "the cgroup is not mounted. Memory swappiness discarded.")
    if hc.get("OomKillDisable"):
        if facts.oom_kill_disable:
            mem["disableOOMKiller"] = True
            if memory <= 0:
                warnings.append("OOM killer is disabled for the container, but no memory "
                                "limit is set, this can result in the system running out of "
                                "resources.")
        else:
            warnings.append("Your kernel does not support OomKillDisable. OomKillDisable "
                            "discarded.")
    if mem:
        resources["memory"] = mem


def _cpu(resources: dict, hc: dict, facts, warnings: list) -> None:
    nano = _int(hc, "NanoCpus")
    period = _int(hc, "CpuPeriod")
    quota = _int(hc, "CpuQuota")
    shares = _int(hc, "CpuShares")
    if nano and period:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano and quota:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = facts.ncpu
    if nano < 0 or nano > ncpu * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                              f"{ncpu} CPUs available")
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    cpu: dict = {}
    if shares:
        if shares < MIN_CPU_SHARES:
            warnings.append(f"Changing requested CPUShares of {shares} to minimum allowed of "
                            f"{MIN_CPU_SHARES}")
            shares = MIN_CPU_SHARES
        elif shares > MAX_CPU_SHARES:
            warnings.append(f"Changing requested CPUShares of {shares} to maximum allowed of "
                            f"{MAX_CPU_SHARES}")
            shares = MAX_CPU_SHARES
        cpu["shares"] = shares
    if nano:
        cpu["period"] = 100000
        cpu["quota"] = max(1000, nano * 100000 // 10**9)
    else:
        if period:
            cpu["period"] = period
        if quota:
            cpu["quota"] = quota
    for key, what, available, word in (
            ("CpusetCpus", "cpus", facts.cpus, "CPUs"),
            ("CpusetMems", "mems", facts.mems, "memory nodes")):
        text = hc.get(key) or ""
        if not text:
            continue
        try:
            wanted = parse_list(text)
        except ValueError:
            raise InvalidArgument(f"Invalid value {text} for cpuset {what}") from None
        if not wanted <= parse_list(available):
            raise InvalidArgument(f"Requested {word} are not available - requested {text}, "
                                  f"available: {available}")
        cpu[what] = text
    if cpu:
        resources["cpu"] = cpu


def _pids(resources: dict, hc: dict) -> None:
    limit = hc.get("PidsLimit")
    if limit is None:
        return
    limit = int(limit)
    # docker: 0 and -1 both mean unlimited
    resources["pids"] = {"limit": limit if limit > 0 else -1}


def _blkio(resources: dict, hc: dict, facts, warnings: list) -> None:
    weight = _int(hc, "BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    io: dict = {}
    weight_devices = hc.get("BlkioWeightDevice") or []
    if weight or weight_devices:
        if facts.blkio_weight:
            if weight:
                io["weight"] = weight
            for d in weight_devices:
                w = int(d.get("Weight") or 0)
                if not 10 <= w <= 1000:
                    raise InvalidArgument("Range of blkio weight is from 10 to 1000")
                _kind, major, minor = _block_device(d.get("Path"), facts)
                io.setdefault("weightDevice", []).append(
                    {"major": major, "minor": minor, "weight": w})
        else:
            warnings.append("Your kernel does not support Block I/O weight or the cgroup is "
                            "not mounted. Weight discarded.")
    for key, field in (("BlkioDeviceReadBps", "throttleReadBpsDevice"),
                       ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
                       ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
                       ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice")):
        entries = hc.get(key) or []
        if not entries:
            continue
        if not facts.blkio_throttle:
            warnings.append(f"Your kernel does not support {key}. Throttling discarded.")
            continue
        for d in entries:
            rate = int(d.get("Rate") or 0)
            if rate < 0:
                raise InvalidArgument(f"invalid rate for device {d.get('Path')}: {rate}")
            _kind, major, minor = _block_device(d.get("Path"), facts)
            io.setdefault(field, []).append({"major": major, "minor": minor, "rate": rate})
    if io:
        resources["blockIO"] = io


def _block_device(path, facts) -> tuple[str, int, int]:
    if not path:
        raise InvalidArgument("a block I/O device needs a path")
    try:
        kind, major, minor, *_ = facts.device(path)
    except OSError as e:
        raise InvalidArgument(f"stat {path}: {os.strerror(e.errno)}") from None
    if kind != "b":
        raise InvalidArgument(f"{path} is not a block device")
    return kind, major, minor


def _shm(spec: dict, hc: dict) -> None:
    size = _int(hc, "ShmSize")
    if size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if not size:
        size = DEFAULT_SHM_SIZE
    for m in spec.get("mounts", []):
        if m.get("destination") == "/dev/shm":
            m["options"] = [o for o in m.get("options", []) if not o.startswith("size=")] + [
                f"size={size}"]


def _ulimits(spec: dict, hc: dict, facts) -> None:
    """Ulimits replace the default of the same name. A hard limit above the daemon's own is
    refused here (raising it needs CAP_SYS_RESOURCE, which the daemon may not hold)."""
    ulimits = hc.get("Ulimits") or []
    if not ulimits:
        return
    rlimits = {r["type"]: r for r in spec["process"].get("rlimits") or []}
    can_raise = "CAP_SYS_RESOURCE" in facts.held_capabilities
    for u in ulimits:
        name = str(u.get("Name") or "").lower()
        if name not in ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard and hard != -1:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard "
                                  f"limit: {soft} > {hard}")
        ours = facts.rlimit_hard(name)
        if not can_raise and ours != -1 and (hard == -1 or hard > ours):
            raise InvalidArgument(
                f"ulimit {name}: hard limit {'unlimited' if hard == -1 else hard} is above "
                f"the daemon's own ({ours}), and raising it needs CAP_SYS_RESOURCE, which "
                "the daemon does not hold")
        key = "RLIMIT_" + name.upper()
        rlimits[key] = {"type": key, "soft": 2**64 - 1 if soft == -1 else soft,
                        "hard": 2**64 - 1 if hard == -1 else hard}
    spec["process"]["rlimits"] = list(rlimits.values())


# --- security -----------------------------------------------------------------------------

def _security(spec: dict, hc: dict, facts, privileged: bool, warnings: list) -> None:
    process = spec["process"]
    linux = spec["linux"]
    held = facts.held_capabilities
    if privileged:
        caps = [c for c in _caps.ALL_CAPABILITIES if c in held]
    else:
        caps = _caps.apply_capability_changes(add=hc.get("CapAdd"), drop=hc.get("CapDrop"))
        adds = {_caps.normalize_capability(c) for c in hc.get("CapAdd") or []}
        if _caps.ALL in adds:
            caps = [c for c in caps if c in held]
        missing = [c for c in caps if c not in held]
        if missing:
            raise InvalidArgument(f"cannot add capabilit{'ies' if len(missing) > 1 else 'y'} "
                                  f"{', '.join(missing)}: the daemon does not hold "
                                  f"{'them' if len(missing) > 1 else 'it'}")
    process["capabilities"] = {"bounding": list(caps), "effective": list(caps),
                               "permitted": list(caps)}

    seccomp = None
    for opt in hc.get("SecurityOpt") or []:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if key == "no-new-privileges":
            if not sep:
                value = "true"
            if value not in ("true", "false"):
                raise InvalidArgument("invalid --security-opt 2: "
                                      f"{opt!r}")
            process["noNewPrivileges"] = value == "true"
        elif key == "seccomp" and sep:
            seccomp = value
        elif key in ("label", "apparmor", "systempaths", "writable-cgroups") and sep:
            if key == "systempaths" and value == "unconfined":
                linux["maskedPaths"] = []
                linux["readonlyPaths"] = []
            elif key == "label" and value == "disable":
                pass
            elif key in ("label", "apparmor"):
                warnings.append(f"security option {key} is ignored: this host has no "
                                "SELinux or AppArmor support in skiff")
        else:
            raise InvalidArgument(f"invalid --security-opt 1: {opt!r}")

    annotations = spec.setdefault("annotations", {})
    if privileged or seccomp == "unconfined":
        annotations[SECCOMP_ANNOTATION] = "unconfined"
        linux.pop("seccomp", None)
    elif seccomp:
        try:
            profile = json.loads(seccomp)
        except ValueError as e:
            raise InvalidArgument(f"decoding seccomp profile failed: {e}") from None
        linux["seccomp"] = docker_profile_to_oci(profile, caps)

    if privileged:
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
        for m in spec.get("mounts", []):
            if m.get("destination") in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m.get("options", []) if o != "ro"]


_ARCH_NAMES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def docker_profile_to_oci(profile: dict, caps, arch: str | None = None,
                          kernel: tuple = ()) -> dict:
    """Docker's seccomp profile format (archMap, syscalls with includes/excludes on
    capabilities, architectures and kernel versions) -> the runtime spec's linux.seccomp for a
    container holding `caps`, as dockerd resolves it."""
    if not isinstance(profile, dict):
        raise InvalidArgument("decoding seccomp profile failed: not a JSON object")
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument("use either 'architectures' or 'archMap'")
    arch = arch or _ARCH_NAMES.get(os.uname().machine, "SCMP_ARCH_X86_64")
    if not kernel:
        try:
            kernel = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
        except ValueError:
            kernel = (0, 0)
    out: dict = {"defaultAction": profile.get("defaultAction") or "SCMP_ACT_ALLOW"}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == arch:
            arches = [arch] + list(entry.get("subArchitectures") or [])
    if arches:
        out["architectures"] = arches
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    caps = set(caps)

    def included(cond: dict) -> bool:
        # every listed capability held, this architecture listed, the kernel new enough
        if cond.get("arches") and arch not in cond["arches"]:
            return False
        if not set(cond.get("caps") or ()) <= caps:
            return False
        if cond.get("minKernel"):
            mk = tuple(int(x) for x in str(cond["minKernel"]).split(".")[:2])
            if kernel < mk:
                return False
        return True

    def excluded(cond: dict) -> bool:
        # any listed capability held, or this architecture listed
        return bool(arch in (cond.get("arches") or ()) or set(cond.get("caps") or ()) & caps)

    syscalls = []
    for rule in profile.get("syscalls") or []:
        names = list(rule.get("names") or ([rule["name"]] if rule.get("name") else []))
        if not names:
            continue
        if rule.get("includes") and not included(rule["includes"]):
            continue
        if rule.get("excludes") and excluded(rule["excludes"]):
            continue
        entry = {"names": names, "action": rule.get("action") or "SCMP_ACT_ALLOW"}
        if rule.get("errnoRet") is not None:
            entry["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            entry["args"] = rule["args"]
        syscalls.append(entry)
    out["syscalls"] = syscalls
    return out


def _rootfs(spec: dict, hc: dict) -> None:
    if hc.get("ReadonlyRootfs"):
        spec.setdefault("root", {})["readonly"] = True
    for path, options in (hc.get("Tmpfs") or {}).items():
        if not path.startswith("/"):
            raise InvalidArgument(f"invalid mount path for tmpfs: {path}")
        opts = [o for o in (options or "").split(",") if o]
        merged = list(TMPFS_DEFAULTS)
        for o in opts:
            opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}.get(o)
            if opposite in merged:
                merged.remove(opposite)
            if o not in merged:
                merged.append(o)
        spec["mounts"] = [m for m in spec.get("mounts", []) if m.get("destination") != path]
        spec["mounts"].append({"destination": path, "type": "tmpfs", "source": "tmpfs",
                               "options": merged})


def _devices(spec: dict, hc: dict, facts, privileged: bool) -> None:
    linux = spec["linux"]
    devices = linux.setdefault("devices", [])
    rules = linux["resources"].setdefault("devices", [])
    if privileged:
        for path, (kind, major, minor, mode, uid, gid) in facts.all_devices():
            devices.append({"path": path, "type": kind, "major": major, "minor": minor,
                            "fileMode": mode, "uid": uid, "gid": gid})
        linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
        return
    for d in hc.get("Devices") or []:
        host_path = d.get("PathOnHost") or ""
        inside = d.get("PathInContainer") or host_path
        perms = d.get("CgroupPermissions") or "rwm"
        if not host_path.startswith("/") or not inside.startswith("/"):
            raise InvalidArgument(f"{host_path}:{inside} is not an absolute path")
        if not perms or any(c not in "rwm" for c in perms):
            raise InvalidArgument(f"invalid device permissions: {perms}")
        try:
            kind, major, minor, mode, uid, gid = facts.device(host_path)
        except OSError as e:
            raise InvalidArgument(f"error gathering device information while adding custom "
                                  f"device \"{host_path}\": {os.strerror(e.errno).lower()}") \
                from None
        devices.append({"path": inside, "type": kind, "major": major, "minor": minor,
                        "fileMode": mode, "uid": uid, "gid": gid})
        rules.append({"allow": True, "type": kind, "major": major, "minor": minor,
                      "access": perms})
    for text in hc.get("DeviceCgroupRules") or []:
        rules.append(parse_device_cgroup_rule(text))


def parse_device_cgroup_rule(text: str) -> dict:
    """`c 1:3 rwm`, `b *:* m`, `a` -> a linux.resources.devices rule (allow)."""
    parts = text.split()
    if parts == ["a"] or (len(parts) == 3 and parts[0] == "a"):
        return {"allow": True, "access": "rwm"}
    if len(parts) != 3 or parts[0] not in ("c", "b") or ":" not in parts[1] or \
            any(c not in "rwm" for c in parts[2]):
        raise InvalidArgument(f"invalid device cgroup format '{text}'")
    major, _, minor = parts[1].partition(":")
    rule = {"allow": True, "type": parts[0], "access": parts[2]}
    for key, value in (("major", major), ("minor", minor)):
        if value != "*":
            if not value.isdigit():
                raise InvalidArgument(f"invalid device cgroup format '{text}'")
            rule[key] = int(value)
    return rule


def _groups(spec: dict, hc: dict, group_file: str | None) -> None:
    """GroupAdd: numbers as they are, names looked up in the image's /etc/group."""
    groups = hc.get("GroupAdd") or []
    if not groups:
        return
    by_name = {}
    for line in (group_file or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].strip().isdigit() and not line.startswith("#"):
            by_name.setdefault(fields[0], int(fields[2]))
    user = spec["process"].setdefault("user", {})
    gids = list(user.get("additionalGids") or [])
    for g in groups:
        text = str(g)
        if text.isdigit():
            gid = int(text)
        elif text in by_name:
            gid = by_name[text]
        else:
            raise InvalidArgument(f"Unable to find group {text}: no matching entries in group "
                                  "file")
        if gid not in gids:
            gids.append(gid)
    user["additionalGids"] = gids


def _sysctls(spec: dict, hc: dict) -> None:
    sysctls = hc.get("Sysctls") or {}
    if not sysctls:
        return
    kinds = {n.get("type") for n in spec["linux"].get("namespaces", []) if not n.get("path")}
    network_mode = hc.get("NetworkMode") or ""
    out = {}
    for key, value in sysctls.items():
        if key in SYSCTL_IPC_NAMES or key.startswith(SYSCTL_IPC_PREFIXES):
            if "ipc" not in kinds:
                raise InvalidArgument(f"sysctl {key!r} is not allowed in host IPC namespace"
                                      if hc.get("IpcMode") == "host" else
                                      f"sysctl {key!r} is not allowed: the container shares "
                                      "another's IPC namespace")
        elif key.startswith(SYSCTL_NET_PREFIX):
            if network_mode == "host" or "network" not in kinds:
                raise InvalidArgument(f"sysctl {key!r} not allowed in host network namespace"
                                      if network_mode == "host" else
                                      f"sysctl {key!r} is not allowed: the container shares "
                                      "another's network namespace")
        elif key in SYSCTL_UTS_NAMES and "uts" in kinds:
            if key == "kernel.hostname":
                raise InvalidArgument("setting sysctl kernel.hostname is not allowed: use "
                                      "--hostname")
        else:
            raise InvalidArgument(f"sysctl '{key}' is not allowed")
        out[key] = str(value)
    spec["linux"]["sysctl"] = out
