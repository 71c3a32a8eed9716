"""`skiff-runtime` with runc's command line, and one bundle run by skiff-runtime, runc and
crun with what each container sees compared (root)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from skiff.runtime.hybrid import in_v1_view

from .test_runtime_bundles import (cgroup_leftovers, make_config, make_rootfs, mounts_under,
                                   new_id, overlay_bundle, remove_cgroup_parent, scratch_dir,
                                   write_bundle)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "src")
ENV = dict(os.environ, PYTHONPATH=SRC)


@pytest.fixture(scope="module")
def world():
    from skiff.runtime import cgroups, host
    tmp = tempfile.mkdtemp(prefix="skiff-rtcli-", dir=scratch_dir())
    parent = f"skiff-rtcli-test-{os.getpid()}"
    parent_dirs = [d for _h, d in cgroups.paths(parent, "x", host.current())]
    try:
        yield {"tmp": tmp, "lower": make_rootfs(os.path.join(tmp, "lower")),
               "state": os.path.join(tmp, "state"), "cgroup_parent": parent,
               "parent_dirs": parent_dirs}
    finally:
        remove_cgroup_parent(parent)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def bundle(world):
    made = []

    def make(args, **kw):
        cid = new_id("cli")
        path = os.path.join(world["tmp"], cid)
        overlay_bundle(path, world["lower"], args, f"{world['cgroup_parent']}/{cid}", **kw)
        made.append(cid)
        return path, cid

    yield make
    for cid in made:  # whatever a failed test left behind
        cli(world, "delete", "--force", cid)
    assert mounts_under(world["tmp"]) == []
    assert cgroup_leftovers(world["parent_dirs"]) == []


def cli(world, *args, stdout=subprocess.PIPE, timeout=30):
    """Run skiff-runtime; stderr goes through a file, since a container started by
    `create` or `run --detach` keeps the descriptors it inherited open."""
    with tempfile.TemporaryFile() as err:
        result = subprocess.run([sys.executable, "-m", "skiff.runtime", "--root",
                                 world["state"], *args], stdout=stdout, stderr=err, env=ENV,
                                timeout=timeout)
        err.seek(0)
        result.stderr = err.read()
    return result


def state(world, cid):
    result = cli(world, "state", cid)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_create_start_state_kill_delete(world, bundle):
    path, cid = bundle(["sh", "-c", "echo hello; exec sleep 30"])
    out_path = os.path.join(world["tmp"], cid + ".out")
    pid_file = os.path.join(world["tmp"], cid + ".pid")
    with open(out_path, "wb") as out:
        result = cli(world, "create", "--bundle", path, "--pid-file", pid_file, cid,
                     stdout=out)
    assert result.returncode == 0, result.stderr
    st = state(world, cid)
    assert (st["id"], st["status"], st["bundle"]) == (cid, "created", path)
    assert st["ociVersion"] and st["pid"] == int(open(pid_file).read())
    assert open(out_path).read() == ""
    assert cli(world, "start", cid).returncode == 0
    wait_for(lambda: open(out_path).read() == "hello\n")
    assert state(world, cid)["status"] == "running"
    refused = cli(world, "delete", cid)
    assert refused.returncode == 1
    assert b"cannot delete container" in refused.stderr and b"running" in refused.stderr
    assert cli(world, "kill", cid, "KILL").returncode == 0
    wait_for(lambda: state(world, cid)["status"] == "stopped")
    assert cli(world, "delete", cid).returncode == 0
    gone = cli(world, "state", cid)
    assert gone.returncode == 1 and b"does not exist" in gone.stderr


def test_run_in_the_foreground_exits_with_the_container_status(world, bundle):
    path, cid = bundle(["sh", "-c", "echo out; echo err >&2; exit 5"])
    result = cli(world, "run", "--bundle", path, cid)
    assert (result.returncode, result.stdout, result.stderr) == (5, b"out\n", b"err\n")
    assert not os.path.exists(os.path.join(world["state"], cid))


def test_run_reports_exec_errors_with_dockers_codes(world, bundle):
    path, cid = bundle(["nosuchcmd"])
    result = cli(world, "run", "--bundle", path, cid)
    assert result.returncode == 127
    assert b'exec: "nosuchcmd": executable file not found in $PATH' in result.stderr
    log = os.path.join(world["tmp"], cid + ".log")
    path2, cid2 = bundle(["/etc/passwd"])
    result = subprocess.run([sys.executable, "-m", "skiff.runtime", "--root", world["state"],
                             "--log", log, "--log-format", "json", "create", "--bundle", path2,
                             cid2], capture_output=True, env=ENV)
    assert result.returncode == 1
    entry = json.loads(open(log).read().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == 'exec: "/etc/passwd": permission denied'


def test_detached_run_then_delete_force(world, bundle):
    path, cid = bundle(["sleep", "30"])
    result = cli(world, "run", "--detach", "--bundle", path, cid, stdout=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert state(world, cid)["status"] == "running"
    assert cli(world, "delete", "--force", cid).returncode == 0
    assert not os.path.exists(os.path.join(world["state"], cid))


# --- one bundle, three runtimes ----------------------------------------------------------

PROBE = r"""
for n in cgroup ipc mnt net pid uts; do echo "ns $n $(readlink /proc/self/ns/$n)"; done
awk '{for (i = 7; i <= NF; i++) if ($i == "-") { print "mount", $5, $(i+1); break }}' \
    /proc/self/mountinfo | sort
grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status
echo "pid $$"; echo "host $(hostname)"; echo "uid $(id -u)"
ls /dev | sort | tr '\n' ' '; echo
exit 3
"""


def run_with(world, runtime: str, bundle_path: str, cid: str):
    root = os.path.join(world["tmp"], f"{runtime}-root")
    if runtime == "skiff-runtime":
        cmd = [sys.executable, "-m", "skiff.runtime", "--root", root]
    else:   # as skiff-monitor runs them: a hybrid host seen as plain v1 (crun needs it)
        cmd = in_v1_view([runtime, "--root", root])
    try:
        return subprocess.run(cmd + ["run", "--bundle", bundle_path, cid], capture_output=True,
                              env=ENV, timeout=30)
    finally:
        if runtime != "skiff-runtime":
            subprocess.run(cmd + ["delete", "--force", cid], capture_output=True)


def see(output: bytes) -> dict:
    seen = {"ns": {}, "mounts": [], "caps": {}}
    for line in output.decode().splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "ns":
            name, link = rest.split()
            seen["ns"][name] = link
        elif kind == "mount":
            # a masked file is a bind of /dev/null: the container's (runc, us: tmpfs) or the
            # host's (crun: devtmpfs); either hides the file
            seen["mounts"].append(rest.replace(" devtmpfs", " tmpfs"))
        elif line.startswith("Cap"):
            key, value = line.split(":")
            seen["caps"][key] = value.strip()
        elif kind in ("pid", "host", "uid"):
            seen[kind] = rest
        elif line.strip():
            seen["dev"] = line.split()
    return seen


def test_conformance_with_runc_and_crun(world):
    path = os.path.join(world["tmp"], new_id("conf"))
    os.makedirs(path)
    rootfs = make_rootfs(os.path.join(path, "rootfs"))
    spec = make_config(["sh", "-c", PROBE], f"{world['cgroup_parent']}/conf")
    write_bundle(path, spec)
    assert os.path.isdir(rootfs)
    host_ns = {n: os.readlink(f"/proc/self/ns/{n}")
               for n in ("cgroup", "ipc", "mnt", "net", "pid", "uts")}

    ours = run_with(world, "skiff-runtime", path, new_id("conf"))
    assert ours.returncode == 3, ours.stderr
    seen = see(ours.stdout)
    assert all(seen["ns"][n] != host_ns[n] for n in host_ns), seen["ns"]
    assert (seen["pid"], seen["host"], seen["uid"]) == ("1", "box", "0")
    assert seen["caps"]["CapEff"] == "00000000a80425fb"

    peers = 0
    for runtime in ("runc", "crun"):
        if shutil.which(runtime) is None:
            continue
        theirs = run_with(world, runtime, path, new_id("conf"))
        assert theirs.returncode == 3, (runtime, theirs.stderr)
        other = see(theirs.stdout)
        if runtime == "crun" and not os.path.exists("/proc/kcore"):
            other["dev"].remove("core")   # crun links /dev/core even when it leads nowhere
        assert all(other["ns"][n] != host_ns[n] for n in host_ns)
        for key in ("mounts", "caps", "pid", "host", "uid", "dev"):
            assert seen[key] == other[key], (runtime, key, seen[key], other[key])
        peers += 1
    assert cgroup_leftovers(world["parent_dirs"]) == []
    if not peers:
        pytest.skip("neither runc nor crun could run here")


def test_crun_runs_here_hybrid_hosts_included(world):
    """crun 1.8 alone refuses a hybrid host ("cgroups in hybrid mode not supported");
    in the v1 view skiff gives it (runtime/hybrid.py) it runs."""
    if shutil.which("crun") is None:
        pytest.skip("crun is not installed")
    path = os.path.join(world["tmp"], new_id("crun"))
    os.makedirs(path)
    make_rootfs(os.path.join(path, "rootfs"))
    write_bundle(path, make_config(["true"], f"{world['cgroup_parent']}/crun"))
    result = run_with(world, "crun", path, new_id("crun"))
    assert result.returncode == 0, result.stderr


def test_run_with_a_terminal_relays_it(world, bundle):
    pexpect = pytest.importorskip("pexpect")
    path, cid = bundle(["sh"], terminal=True)
    child = pexpect.spawn(sys.executable, ["-m", "skiff.runtime", "--root", world["state"],
                                           "run", "--bundle", path, cid],
                          env=dict(ENV, TERM="xterm"), dimensions=(33, 101), timeout=20)
    try:
        child.expect(r"[#$] ")
        child.sendline("tty; stty size; echo $((6*7))")
        child.expect(r"/dev/pts/0")
        child.expect(r"33 101")
        child.expect(r"42")
        child.sendline("exit 4")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 4
