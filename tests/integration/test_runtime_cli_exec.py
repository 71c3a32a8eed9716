"""`skiff-runtime exec` with runc's command line (root)."""

import json
import os
import subprocess

import pytest

from .test_runtime_cli import bundle, cli, world  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox")]


def test_exec_args_and_process_json(world, bundle):  # noqa: F811
    path, cid = bundle(["sleep", "30"])
    result = cli(world, "run", "--detach", "--bundle", path, cid, stdout=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    try:
        result = cli(world, "exec", "--cwd", "/tmp", "-e", "A=1", "-e", "B=2", cid,
                     "sh", "-c", "pwd; echo $A$B; hostname; cat /proc/1/cmdline; exit 4")
        assert result.returncode == 4, result.stderr
        assert result.stdout.decode().replace("\0", " ").split() == [
            "/tmp", "12", "box", "sleep", "30"]
        process = os.path.join(world["tmp"], f"{cid}-process.json")
        with open(process, "w") as f:
            json.dump({"args": ["id", "-u"], "user": {"uid": 1000, "gid": 1000},
                       "cwd": "/"}, f)
        result = cli(world, "exec", "--process", process, cid)
        assert (result.returncode, result.stdout) == (0, b"1000\n"), result.stderr
        result = cli(world, "exec", cid, "nosuch")
        assert result.returncode == 1
        assert b'executable file not found in $PATH' in result.stderr
        pid_file = os.path.join(world["tmp"], f"{cid}-exec.pid")
        result = cli(world, "exec", "-d", "--pid-file", pid_file, cid, "sleep", "30",
                     stdout=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        with open(pid_file) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/status") as f:
            assert "NSpid:" in f.read()
        result = cli(world, "ps", "--format", "json", cid)
        assert pid in json.loads(result.stdout), result.stderr
        result = cli(world, "ps", cid, "-o", "pid,comm")
        assert result.stdout.decode().split()[:2] == ["PID", "COMMAND"], result.stderr
        assert {ln.split()[1] for ln in result.stdout.decode().splitlines()[1:]} == {"sleep"}
        assert cli(world, "pause", cid).returncode == 0
        with open(f"/proc/{pid}/cgroup") as f:
            freezer = [ln.split(":", 2)[2] for ln in f.read().splitlines()
                       if ln.split(":")[1] == "freezer"]
        if freezer:  # v1 (this machine): the freezer hierarchy says FROZEN
            with open(f"/sys/fs/cgroup/freezer{freezer[0]}/freezer.state") as f:
                assert f.read().strip() == "FROZEN"
        assert cli(world, "resume", cid).returncode == 0
        result = cli(world, "exec", cid, "true")
        assert result.returncode == 0, result.stderr
    finally:
        assert cli(world, "delete", "--force", cid).returncode == 0
