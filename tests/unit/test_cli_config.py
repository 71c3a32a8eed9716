"""From run/create flags to the body of POST /containers/create, and docker's exit codes."""

import pytest

from skiff.cli import commands
from skiff.cli import config as cfg
from skiff.cli.commands.run import EscapeDetector, detach_sequence
from skiff.cli.flags import parse
from skiff.cli.spec import BY_NAME


def build(*argv, detach=None, env_files=None, lookup=lambda k: None):
    opts, args = parse(BY_NAME["run"], list(argv), commands.validators("run"))
    return cfg.build_create(opts, args[0], args[1:],
                            detach=opts.detach if detach is None else detach,
                            env_files=env_files, lookup=lookup)


def test_plain_run_body():
    body, params = build("busybox")
    assert params == {}
    assert body["Image"] == "busybox" and body["Cmd"] is None and body["Entrypoint"] is None
    assert body["AttachStdout"] and body["AttachStderr"] and not body["AttachStdin"]
    assert not body["OpenStdin"] and not body["StdinOnce"] and not body["Tty"]
    assert body["HostConfig"]["AutoRemove"] is False
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_interactive_tty_rm_and_names():
    body, params = build("-it", "--rm", "--name", "web", "-h", "box", "-u", "1000:1000",
                         "-w", "/srv", "-l", "a=b", "-l", "flag", "busybox", "sh", "-c", "x")
    assert params == {"name": "web"}
    assert body["Tty"] and body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]
    assert body["Cmd"] == ["sh", "-c", "x"]
    assert body["Hostname"] == "box" and body["User"] == "1000:1000"
    assert body["WorkingDir"] == "/srv" and body["Labels"] == {"a": "b", "flag": ""}
    assert body["HostConfig"]["AutoRemove"] is True


def test_detached_attaches_nothing():
    body, _ = build("-d", "-i", "busybox")
    assert body["OpenStdin"] and not body["AttachStdin"] and not body["StdinOnce"]
    assert not body["AttachStdout"] and not body["AttachStderr"]


def test_entrypoint():
    assert build("--entrypoint", "/bin/sh -c", "busybox")[0]["Entrypoint"] == ["/bin/sh -c"]
    assert build("--entrypoint=", "busybox")[0]["Entrypoint"] == [""]


def test_env_files_come_before_env_flags():
    text = "\ufeff# comment\n\nA=1\n  B=spaced value \nPASS\nMISSING\n"
    body, _ = build("-e", "C=3", "busybox", env_files=[text],
                    lookup={"PASS": "through"}.get)
    assert body["Env"] == ["A=1", "B=spaced value ", "PASS=through", "C=3"]


def test_env_file_rejects_bad_keys():
    with pytest.raises(ValueError, match="contains whitespaces"):
        cfg.parse_env_file("BAD KEY=1\n")
    with pytest.raises(ValueError, match="no variable name"):
        cfg.parse_env_file("=1\n")


@pytest.mark.parametrize("spec, exposed, bindings", [
    ("80", ["80/tcp"], {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("8080:80", ["80/tcp"], {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("127.0.0.1:8080:80/udp", ["80/udp"],
     {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
    ("127.0.0.1::80", ["80/tcp"], {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
    ("[::1]:8080:80", ["80/tcp"], {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
    ("8000-8001:9000-9001", ["9000/tcp", "9001/tcp"],
     {"9000/tcp": [{"HostIp": "", "HostPort": "8000"}],
      "9001/tcp": [{"HostIp": "", "HostPort": "8001"}]}),
    ("8000-8010:80", ["80/tcp"], {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
])
def test_publish(spec, exposed, bindings):
    got_exposed, got_bindings = cfg.parse_publish([spec])
    assert sorted(got_exposed) == exposed and got_bindings == bindings


@pytest.mark.parametrize("spec", ["x", "80/foo", "1-2:3-5", "70000"])
def test_publish_rejects(spec):
    with pytest.raises(ValueError):
        cfg.parse_publish([spec])


def test_volumes_tmpfs_restart_memory_hosts():
    body, _ = build("-v", "/data", "-v", "/host:/ctr:ro", "-v", "named:/vol",
                    "--tmpfs", "/run:size=64m", "--restart", "on-failure:3", "-m", "512m",
                    "--add-host", "db:10.0.0.2", "--network", "host", "--init",
                    "--cap-add", "NET_ADMIN", "--privileged", "--read-only", "busybox")
    host = body["HostConfig"]
    assert body["Volumes"] == {"/data": {}}
    assert host["Binds"] == ["/host:/ctr:ro", "named:/vol"]
    assert host["Tmpfs"] == {"/run": "size=64m"}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Memory"] == 512 * 2**20
    assert host["ExtraHosts"] == ["db:10.0.0.2"]
    assert host["NetworkMode"] == "host" and host["Init"] is True
    assert host["CapAdd"] == ["NET_ADMIN"] and host["Privileged"] and host["ReadonlyRootfs"]


def test_restart_conflicts_with_rm():
    with pytest.raises(ValueError, match="--restart and --rm"):
        build("--rm", "--restart", "always", "busybox")


@pytest.mark.parametrize("value, error", [
    ("sometimes", "unknown policy 'sometimes'"), ("always:3", "only be used with 'on-failure'"),
    ("on-failure:x", "must be an integer"),
])
def test_restart_rejects(value, error):
    with pytest.raises(ValueError, match=error):
        cfg.parse_restart(value)


@pytest.mark.parametrize("text, size", [("1024", 1024), ("1k", 1024), ("1.5g", 3 * 2**29),
                                        ("64MiB", 64 * 2**20), ("2 GB", 2 * 2**30)])
def test_memory(text, size):
    assert cfg.parse_memory(text) == size


@pytest.mark.parametrize("message, status", [
    ('exec: "nosuchcmd": executable file not found in $PATH', 127),
    ("exec: /bin/x: no such file or directory", 127),
    ('exec: "/etc/passwd": permission denied', 126),
    ('exec: "/etc": is a directory', 126),
    ("cgroup setup failed", 125),
])
def test_start_error_exit_codes(message, status):
    assert cfg.start_error_status(message) == status


def test_detach_keys():
    assert detach_sequence("ctrl-p,ctrl-q") == b"\x10\x11"
    assert detach_sequence("a,ctrl-@") == b"a\x00"
    with pytest.raises(ValueError):
        detach_sequence("ctrl-xx")
    detector = EscapeDetector(b"\x10\x11")
    assert detector.feed(b"ab\x10") == (b"ab", False)   # held back: maybe the sequence
    assert detector.feed(b"c") == (b"\x10c", False)      # it was not
    assert detector.feed(b"x\x10\x11tail") == (b"x", True)
