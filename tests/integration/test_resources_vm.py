"""The cgroup v2 driver for real: the resource, security, isolation and cgroup-operation
(pause, update) tests run again inside
scripts/cgroup2-vm.sh, whose guest has a pure cgroup v2 hierarchy with every controller.

One boot runs them all (a boot costs seconds, minutes under TCG). Select with
`-m cgroup_v2`; `-m "not cgroup_v2"` leaves the VM out.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.cgroup_v2]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cgroup2-vm.sh")
IN_GUEST = [f for f in ("tests/integration/test_resources.py",
                        "tests/integration/test_security.py",
                        "tests/integration/test_isolation.py",
                        "tests/integration/test_cgroup_ops.py")
            if os.path.exists(os.path.join(ROOT, f))]


GUEST_OWN_DIRS = ("/tmp/", "/var/tmp/", "/run/", "/var/lib/skiff/")  # the guest's own


def test_limits_and_security_on_a_pure_cgroup_v2_host():
    if os.geteuid() != 0:
        pytest.skip("needs root (qemu's 9p passthrough and the VM's cgroups)")
    if os.environ.get("SKIFF_IN_CGROUP2_VM"):
        pytest.skip("already inside the VM")
    if not shutil.which("qemu-system-x86_64") or not glob.glob("/boot/vmlinuz-*"):
        pytest.skip("no qemu or no kernel: run scripts/cgroup2-vm.sh --setup")
    started = time.monotonic()
    # -rs: the reasons of skips are in the output, so that a skip in the guest is seen
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
               *IN_GUEST]
    share = ["--rw", ROOT] if ROOT.startswith(GUEST_OWN_DIRS) else []  # e.g. a CI clone
    result = subprocess.run([SCRIPT, "--timeout", "420", *share, "--", *command], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=480)
    out = result.stdout.decode(errors="replace")
    print(out)
    print(f"cgroup2 VM run took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, out
    summary = re.findall(r"(\d+) (passed|failed|skipped|error)", out.splitlines()[-1]
                         if out.strip() else "")
    counts = {kind: int(n) for n, kind in summary}
    assert counts.get("passed", 0) >= 10 and not counts.get("failed"), out
    # what cgroup v2 must show was really shown: no test skipped there
    assert not counts.get("skipped"), out
