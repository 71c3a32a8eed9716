"""The cgroup v2 VM (scripts/cgroup2-vm.sh): one boot, probed from inside.

The probe runs as one Python process in the guest (each process start is costly when the VM runs
under TCG), prints a JSON report on stdout and a line on stderr, and exits with PROBE_STATUS, so
that the test also checks that the two streams and the exit status come back out of the VM apart.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.cgroup_v2]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cgroup2-vm.sh")
PROBE_STATUS = 42

PROBE = r"""
import json, os, signal, sys, time
report = {"env": os.environ.get("SKIFF_IN_CGROUP2_VM"), "cwd": os.getcwd()}
with open("/proc/self/mounts") as f:
    mounts = [line.split() for line in f]
report["cgroup_mounts"] = [(m[1], m[2]) for m in mounts if m[2].startswith("cgroup")]
root = "/sys/fs/cgroup"
report["subtree_control"] = open(root + "/cgroup.subtree_control").read().split()

cg = root + "/skiff-vm-probe"
os.mkdir(cg)
open(cg + "/memory.max", "w").write(str(32 << 20))
open(cg + "/pids.max", "w").write("8")
report["memory.max"] = open(cg + "/memory.max").read().strip()
report["pids.max"] = open(cg + "/pids.max").read().strip()

def in_cgroup(child):
    # Fork, move the child into the cgroup, run child(); return (status, what it wrote).
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            open(cg + "/cgroup.procs", "w").write("0")
            os.write(w, str(child()).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    return os.waitpid(pid, 0)[1], out.decode()

def fork_until_refused():
    # Children wait on a pipe; count forks until the kernel says EAGAIN (pids.max).
    r, w = os.pipe()
    kids = []
    try:
        for _ in range(30):
            try:
                pid = os.fork()
            except BlockingIOError:
                return len(kids)
            if pid == 0:
                os.close(w)
                os.read(r, 1)
                os._exit(0)
            kids.append(pid)
        return len(kids)
    finally:
        os.close(w)
        for pid in kids:
            os.waitpid(pid, 0)

status, out = in_cgroup(fork_until_refused)
report["forks_before_refused"] = int(out)
report["pids.events"] = open(cg + "/pids.events").read().split()

status, out = in_cgroup(lambda: len(b"x" * (128 << 20)))
report["big_alloc_signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
events = dict(line.split() for line in open(cg + "/memory.events"))
report["oom_kill"] = int(events["oom_kill"])

for _ in range(100):  # the cgroup empties once the kernel has reaped its tasks
    try:
        os.rmdir(cg)
        break
    except OSError:
        time.sleep(0.05)
report["cleaned_up"] = not os.path.exists(cg)

sys.path.insert(0, "src")
import skiff
report["skiff"] = skiff.__file__
print("PROBE " + json.dumps(report))
print("probe stderr", file=sys.stderr)
sys.exit(%d)
""" % PROBE_STATUS


GUEST_OWN_DIRS = ("/tmp/", "/var/tmp/", "/run/", "/var/lib/skiff/")


def test_cgroup2_vm_has_a_working_v2_hierarchy():
    if os.geteuid() != 0:
        pytest.skip("needs root (qemu's 9p passthrough and the VM's cgroups)")
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("qemu-system-x86_64 is missing: run scripts/cgroup2-vm.sh --setup")
    if not glob.glob("/boot/vmlinuz-*"):
        pytest.skip("no kernel in /boot: run scripts/cgroup2-vm.sh --setup")
    started = time.monotonic()
    share = []
    if ROOT.startswith(GUEST_OWN_DIRS):  # a checkout the guest would not see (CI clones)
        share = ["--rw", ROOT]
    result = subprocess.run([SCRIPT, "--timeout", "150", *share, "--", sys.executable, "-c",
                             PROBE],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=180)
    took = time.monotonic() - started
    out, err = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    lines = [line for line in out.splitlines() if line.startswith("PROBE ")]
    assert lines, f"no report from the guest (exit {result.returncode}):\n{out}\n{err}"
    report = json.loads(lines[-1][len("PROBE "):])
    print(f"cgroup2 VM probe took {took:.1f} s")

    assert result.returncode == PROBE_STATUS, err
    assert "probe stderr" in err and "probe stderr" not in out
    assert report["env"] == "1"
    assert report["cwd"] == ROOT
    assert report["cgroup_mounts"] == [["/sys/fs/cgroup", "cgroup2"]]
    assert {"memory", "pids", "cpu", "io"} <= set(report["subtree_control"])
    assert report["memory.max"] == str(32 << 20)
    assert report["pids.max"] == "8"
    # pids.max = 8 counts the forking process itself: 7 more, then EAGAIN.
    assert report["forks_before_refused"] == 7
    assert report["pids.events"][0] == "max" and int(report["pids.events"][1]) >= 1
    # 128 MiB written in a cgroup limited to 32 MiB (the guest has no swap): OOM-killed.
    assert report["big_alloc_signal"] == 9 and report["oom_kill"] >= 1
    assert report["cleaned_up"]
    assert report["skiff"] == os.path.join(ROOT, "src", "skiff", "__init__.py")
