"""Pure parts of exec, top and pause: the exec plan as values, env merging, ps parsing."""

import pytest

from skiff.engine.execs import replace_or_append
from skiff.engine.process import TopError, parse_ps
from skiff.runtime import steps as S
from skiff.runtime.exec import ExecTerminal, build, failure_text, merged_process
from skiff.runtime.host import Hierarchy, Host

HOST = Host(False, [Hierarchy("/sys/fs/cgroup/memory", "/", ("memory",), "/")])


def config(**process):
    return {
        "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "hostname": "box",
        "process": {"args": ["sleep", "1"], "env": ["PATH=/bin", "A=1"], "cwd": "/srv",
                    "user": {"uid": 0, "gid": 0},
                    "capabilities": {k: ["CAP_CHOWN", "CAP_KILL"] for k in
                                     ("bounding", "effective", "permitted")}, **process},
        "linux": {"namespaces": [{"type": t} for t in ("mount", "pid", "uts", "ipc")],
                  "cgroupsPath": "c1"},
    }


def plan_of(process, cfg=None, **kw):
    return build(cfg or config(), process, bundle="/b", container_id="c1", host=HOST,
                 joins=[("ipc", "/proc/9/ns/ipc"), ("mount", "/proc/9/ns/mnt")],
                 cgroup_files=["/sys/fs/cgroup/memory/c1/tasks"],
                 pid_ns_path="/proc/9/ns/pid", console=kw.get("console", False))


def test_the_process_joins_first_then_takes_the_container_privileges():
    plan = plan_of({"args": ["id"]})
    kinds = [type(s) for s in plan.steps]
    assert plan.steps[0] == S.JoinCgroups(("/sys/fs/cgroup/memory/c1/tasks",))
    assert plan.steps[1:3] == [S.JoinNamespace("ipc", "/proc/9/ns/ipc"),
                               S.JoinNamespace("mount", "/proc/9/ns/mnt")]
    assert not {S.Mount, S.PivotRoot, S.SetHostname, S.MaskPath, S.Terminal} & set(kinds)
    assert S.Chdir("/srv") in plan.steps  # the container's cwd
    assert plan.steps[-1] == S.Exec(("id",), ("PATH=/bin", "A=1"))
    assert kinds.index(S.LoadSeccomp) > kinds.index(S.SetUser)
    assert plan.seccomp == ("default", ("CAP_CHOWN", "CAP_KILL"))
    assert plan.pid_ns_path == "/proc/9/ns/pid" and plan.clone_flags == 0


def test_privileged_exec_keeps_the_container_seccomp_filter():
    names = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    plan = plan_of({"args": ["id"], "capabilities": {k: names for k in
                                                     ("bounding", "effective", "permitted")}})
    assert plan.seccomp == ("default", ("CAP_CHOWN", "CAP_KILL"))
    caps = [s for s in plan.steps if isinstance(s, S.SetCapabilities)]
    assert caps[-1].effective == (1 << 0) | (1 << 5) | (1 << 21) | (1 << 12)


def test_user_cwd_env_and_terminal():
    plan = plan_of({"args": ["sh"], "user": {"uid": 1000, "gid": 1000}, "cwd": "/tmp",
                    "env": ["PATH=/usr/bin"], "terminal": True,
                    "consoleSize": {"height": 24, "width": 80}}, console=True)
    assert ExecTerminal(1000, 24, 80) in plan.steps
    assert S.SetUser(1000, 1000, ()) in plan.steps
    assert S.Chdir("/tmp") in plan.steps
    assert S.ResolveCommand("sh", "/usr/bin") in plan.steps


def test_merged_process_and_docker_wording():
    merged = merged_process(config(terminal=True), {"args": ["id"], "cwd": None})
    assert merged["args"] == ["id"] and merged["cwd"] == "/srv" and "terminal" not in merged
    assert failure_text('exec: "x": executable file not found in $PATH') == (
        'OCI runtime exec failed: exec failed: unable to start container process: '
        'exec: "x": executable file not found in $PATH: unknown')


def test_env_replace_or_append():
    assert replace_or_append(["A=1", "B=2", "C=3"], ["B=x", "D=4", "C"]) == [
        "A=1", "B=x", "D=4"]


def test_parse_ps_keeps_the_container_pids_and_spaces_in_the_last_column():
    out = ("UID   PID  PPID  C STIME TTY          TIME CMD\n"
           "root     1     0  0 06:00 ?        00:00:01 /sbin/init splash\n"
           "root   120     1  0 06:01 ?        00:00:00 sh -c while true; do sleep 1; done\n"
           "root   121   120  0 06:01 ?        00:00:00 sleep 1\n")
    top = parse_ps(out, {120, 121})
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [p[1] for p in top["Processes"]] == ["120", "121"]
    assert top["Processes"][0][-1] == "sh -c while true; do sleep 1; done"
    with pytest.raises(TopError):
        parse_ps("USER COMMAND\nroot sh\n", {1})
