"""cgroups for containers, v1 and v2, knowing nothing of containers beyond a path.

Pure part: `paths(cgroups_path, container_id, host)` -> [(Hierarchy, host dir)] and
`resource_writes(resources, v2)` -> [(controller, file, value)] (what to write where, as
values). I/O part: `create` (mkdir + limits, in the caller, before the fork), `remove`
(kill what is left, rmdir; after the init was reaped).

A relative `linux.cgroupsPath` is relative to the calling process's own cgroup in each
hierarchy; an absolute one is relative to the hierarchy's root; an empty one means the
container id, relative. systemd's "slice:prefix:name" form is not supported.
"""

import errno
import os
import posixpath
import time

from skiff.errors import InvalidArgument, RuntimeFailure


def paths(cgroups_path: str | None, container_id: str, host) -> list:
    cgroups_path = cgroups_path or container_id
    if ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise InvalidArgument(f"systemd cgroup paths are not supported: {cgroups_path}")
    out = []
    for h in host.hierarchies:
        if cgroups_path.startswith("/"):
            full = posixpath.normpath(cgroups_path)
        else:
            full = posixpath.normpath(posixpath.join(h.own_path, cgroups_path))
            if not (full + "/").startswith(h.own_path.rstrip("/") + "/") or full == h.own_path:
                raise InvalidArgument(f"cgroupsPath {cgroups_path!r} leaves the caller's cgroup")
        out.append((h, h.dir_for(full)))
    return out


# pseudo-file of resource_writes on v2: the value is a BPF program to attach, not text
DEVICE_PROGRAM = "<bpf device program>"


# v1 cpu.shares -> v2 cpu.weight, as runc and the kernel documentation convert it
def _shares_to_weight(shares: int) -> int:
    if shares <= 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def resource_writes(resources: dict | None, v2: bool) -> list:
    """What to write for `linux.resources`: memory, cpu, cpuset, pids, block I/O and
    devices (v1: devices.allow/deny; v2: a BPF program)."""
    r = resources or {}
    out = []
    mem = r.get("memory") or {}
    cpu = r.get("cpu") or {}
    pids = r.get("pids") or {}
    limit = mem.get("limit")
    swap = mem.get("swap")
    if v2:
        if limit is not None:
            out.append(("memory", "memory.max", "max" if limit < 0 else str(limit)))
            if swap is not None:
                out.append(("memory", "memory.swap.max",
                            "max" if swap < 0 else str(max(0, swap - limit))))
        if mem.get("reservation") is not None:
            out.append(("memory", "memory.low", str(mem["reservation"])))
        if cpu.get("shares"):
            out.append(("cpu", "cpu.weight", str(_shares_to_weight(cpu["shares"]))))
        if cpu.get("quota") is not None or cpu.get("period") is not None:
            quota = cpu.get("quota")
            period = cpu.get("period") or 100000
            out.append(("cpu", "cpu.max",
                        f"{'max' if quota is None or quota <= 0 else quota} {period}"))
        if cpu.get("cpus"):
            out.append(("cpuset", "cpuset.cpus", cpu["cpus"]))
        if cpu.get("mems"):
            out.append(("cpuset", "cpuset.mems", cpu["mems"]))
        if pids.get("limit") is not None:
            lim = pids["limit"]
            out.append(("pids", "pids.max", "max" if lim <= 0 else str(lim)))
        out += _io_writes_v2(r.get("blockIO") or {})
        if r.get("devices"):
            out.append(("", DEVICE_PROGRAM, device_program(r["devices"])))
        return out
    if limit is not None:
        out.append(("memory", "memory.limit_in_bytes", str(limit)))
    if swap is not None:
        out.append(("memory", "memory.memsw.limit_in_bytes", str(swap)))
    if mem.get("reservation") is not None:
        out.append(("memory", "memory.soft_limit_in_bytes", str(mem["reservation"])))
    if mem.get("swappiness") is not None:
        out.append(("memory", "memory.swappiness", str(mem["swappiness"])))
    if mem.get("disableOOMKiller"):
        out.append(("memory", "memory.oom_control", "1"))
    if cpu.get("shares"):
        out.append(("cpu", "cpu.shares", str(cpu["shares"])))
    if cpu.get("period"):
        out.append(("cpu", "cpu.cfs_period_us", str(cpu["period"])))
    if cpu.get("quota"):
        out.append(("cpu", "cpu.cfs_quota_us", str(cpu["quota"])))
    if cpu.get("cpus"):
        out.append(("cpuset", "cpuset.cpus", cpu["cpus"]))
    if cpu.get("mems"):
        out.append(("cpuset", "cpuset.mems", cpu["mems"]))
    if pids.get("limit") is not None:
        lim = pids["limit"]
        out.append(("pids", "pids.max", "max" if lim <= 0 else str(lim)))
    out += _blkio_writes_v1(r.get("blockIO") or {})
    for rule in r.get("devices") or ():
        out.append(("devices", "devices.allow" if rule.get("allow") else "devices.deny",
                    device_rule(rule)))
    return out


_THROTTLE = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
             ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
             ("throttleReadIOPSDevice", "read_iops_device", "riops"),
             ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))


def _blkio_writes_v1(io: dict) -> list:
    out = []
    if io.get("weight"):
        out.append(("blkio", "blkio.weight", str(io["weight"])))
    for d in io.get("weightDevice") or ():
        out.append(("blkio", "blkio.weight_device", f"{d['major']}:{d['minor']} {d['weight']}"))
    for field, name, _key in _THROTTLE:
        for d in io.get(field) or ():
            out.append(("blkio", f"blkio.throttle.{name}",
                        f"{d['major']}:{d['minor']} {d['rate']}"))
    return out


def _io_writes_v2(io: dict) -> list:
    """io.weight ("default N", "MAJ:MIN N") and io.max, one line per device with every
    limit of that device ("8:0 rbps=1048576 wiops=max")."""
    out = []
    if io.get("weight"):
        out.append(("io", "io.weight", f"default {io['weight']}"))
    for d in io.get("weightDevice") or ():
        out.append(("io", "io.weight", f"{d['major']}:{d['minor']} {d['weight']}"))
    limits: dict = {}
    for field, _name, key in _THROTTLE:
        for d in io.get(field) or ():
            limits.setdefault((d["major"], d["minor"]), []).append(
                f"{key}={d['rate'] if d['rate'] > 0 else 'max'}")
    for (major, minor), parts in limits.items():
        out.append(("io", "io.max", f"{major}:{minor} " + " ".join(parts)))
    return out


def device_program(rules) -> bytes:
    """cgroup v2: the devices rules as an eBPF program (the same decisions as v1's
    devices.allow/deny written in order: the last rule that matches wins; none: deny)."""
    from skiff.linux import bpf as B
    head = [
        B.insn(B.LDX_W, 2, 1, 0), B.insn(B.AND32_K, 2, imm=0xFFFF),   # r2 = type
        B.insn(B.LDX_W, 3, 1, 0), B.insn(B.RSH32_K, 3, imm=16),       # r3 = access
        B.insn(B.LDX_W, 4, 1, 4), B.insn(B.LDX_W, 5, 1, 8),           # r4, r5 = major, minor
    ]
    blocks = []
    for rule in reversed(list(rules or ())):
        checks = []
        kind = rule.get("type") or "a"
        if kind in ("b", "c"):
            checks.append((B.JNE32_K, 2, B.DEV_BLOCK if kind == "b" else B.DEV_CHAR))
        elif kind != "a":
            continue
        access = 0
        for ch in rule.get("access") or "rwm":
            access |= {"r": B.ACC_READ, "w": B.ACC_WRITE, "m": B.ACC_MKNOD}.get(ch, 0)
        major, minor = rule.get("major"), rule.get("minor")
        if kind != "a" and major is not None and major >= 0:
            checks.append((B.JNE32_K, 4, major))
        if kind != "a" and minor is not None and minor >= 0:
            checks.append((B.JNE32_K, 5, minor))
        body = []
        n = len(checks) + (3 if access != 7 else 0) + 2
        if access != 7:  # the access asked for must be within the rule's
            body += [B.insn(B.MOV32_X, 1, 3), B.insn(B.AND32_K, 1, imm=~access & 7),
                     B.insn(B.JNE32_K, 1, off=n - len(body) - 3, imm=0)]
        for op, reg, imm in checks:
            body.append(B.insn(op, reg, off=n - len(body) - 1, imm=imm))
        body += [B.insn(B.MOV32_K, 0, imm=1 if rule.get("allow") else 0), B.insn(B.EXIT)]
        blocks.append(b"".join(body))
        if not checks and access == 7:
            break  # matches everything: what follows is unreachable (the verifier refuses it)
    else:
        blocks.append(B.insn(B.MOV32_K, 0, imm=0) + B.insn(B.EXIT))
    return b"".join(head) + b"".join(blocks)


def device_rule(rule: dict) -> str:
    """{"allow", "type", "major", "minor", "access"} -> "c 1:3 rwm" (v1 devices file)."""
    kind = rule.get("type") or "a"
    if kind == "a":
        return "a"
    major = rule.get("major")
    minor = rule.get("minor")
    major = "*" if major is None or major < 0 else str(major)
    minor = "*" if minor is None or minor < 0 else str(minor)
    return f"{kind} {major}:{minor} {rule.get('access') or 'rwm'}"


# --- I/O -------------------------------------------------------------------------------------

def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _mkdir(path: str, stop: str, created: list, cpuset: bool) -> None:
    """mkdir -p `path` (below `stop`); new cpuset cgroups get their parent's cpus and mems."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path or len(parent) < len(stop):
            raise
        _mkdir(parent, stop, created, cpuset)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            return
    created.append(path)
    if cpuset:
        parent = os.path.dirname(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not _read(os.path.join(path, name)):
                _write(os.path.join(path, name), _read(os.path.join(parent, name)))


def create(dirs: list, writes: list, v2: bool) -> list:
    """Make each container cgroup dir and apply `writes`; returns the dirs made (for undo).

    A limit that cannot be applied (controller missing, value refused) raises
    RuntimeFailure naming the file; nothing is left behind then.
    """
    created = []
    try:
        for h, d in dirs:
            stop = h.dir_for(h.own_path) if d.startswith(h.dir_for(h.own_path)) else h.mountpoint
            _mkdir(d, stop, created, "cpuset" in h.controllers)
        if v2 and writes:
            _enable_v2_controllers(dirs, [w for w in writes if w[0]])
        opened = {}  # one open per file: devices.allow takes one rule per write
        try:
            for controller, name, value in writes:
                if name == DEVICE_PROGRAM:
                    _attach_device_program(dirs[0][1], value)
                    continue
                target = _dir_with(dirs, controller, v2)
                if target is None:
                    raise RuntimeFailure(f"cgroup controller {controller} is not available "
                                         f"(needed for {name})")
                path = os.path.join(target, name)
                try:
                    fd = opened.get(path)
                    if fd is None:
                        fd = opened[path] = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                    os.write(fd, value.encode())
                except OSError as e:
                    raise RuntimeFailure(f"failed to write {value!r} to {name}: "
                                         f"{os.strerror(e.errno)}") from None
        finally:
            for fd in opened.values():
                os.close(fd)
    except BaseException:
        for d in reversed(created):
            try:
                os.rmdir(d)
            except OSError:
                pass
        raise
    return created


def _attach_device_program(d: str, program: bytes) -> None:
    from skiff.linux import bpf
    try:
        prog = bpf.load_device_program(program)
        try:
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                bpf.attach_device_program(fd, prog)
            finally:
                os.close(fd)
        finally:
            os.close(prog)
    except OSError as e:
        raise RuntimeFailure(f"cannot apply the device rules: {e.strerror}") from None


def _dir_with(dirs, controller, v2):
    for h, d in dirs:
        if v2 or controller in h.controllers:
            return d
    return None


def _enable_v2_controllers(dirs, writes) -> None:
    needed = {c for c, _n, _v in writes if c}
    for h, d in dirs:
        chain = []
        p = os.path.dirname(d)
        top = h.mountpoint.rstrip("/")
        while len(p) >= len(top):
            chain.append(p)
            if p == top:
                break
            p = os.path.dirname(p)
        for parent in reversed(chain):
            have = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
            missing = needed - have
            if missing:
                try:
                    _write(os.path.join(parent, "cgroup.subtree_control"),
                           " ".join("+" + c for c in sorted(missing)))
                except OSError as e:
                    raise RuntimeFailure(
                        f"cannot enable cgroup controllers {sorted(missing)} in {parent}: "
                        f"{os.strerror(e.errno)}") from None


def join_files(dirs: list, v2: bool) -> list:
    """The files a process writes "0" to, to join each cgroup. On v1 that is `tasks`: for a
    single-threaded process moving itself, the kernel then skips the global threadgroup
    lock, whose RCU grace period costs ~10 ms per spawn with `cgroup.procs`."""
    name = "cgroup.procs" if v2 else "tasks"
    return [os.path.join(d, name) for _h, d in dirs]


def remove(dirs: list, timeout: float = 2.0) -> None:
    """Kill what is left in each cgroup and remove it (leaf only); missing dirs are fine."""
    deadline = time.monotonic() + timeout
    for _h, d in dirs:
        delay = 0.001
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise RuntimeFailure(f"cannot remove cgroup {d}: {os.strerror(e.errno)}") \
                        from None
            _kill_all(d)
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _kill_all(d: str) -> None:
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            pids = [int(x) for x in f.read().split()]
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
