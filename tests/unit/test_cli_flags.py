"""Command-line parsing: pflag's rules, docker's usage errors and exit statuses, --help."""

import pytest

from skiff.cli import commands
from skiff.cli.flags import HelpRequested, UsageError, format_help, parse, render_usage_error
from skiff.cli.main import main, split_global
from skiff.cli.spec import BY_NAME, COMMANDS, lookup


def run_args(*argv):
    return parse(BY_NAME["run"], list(argv), commands.validators("run"))


def test_bundled_short_flags_and_values():
    opts, args = run_args("-it", "--rm", "-eA=1", "-e", "B=2", "--env=C=3", "-w/tmp",
                          "--name", "web", "busybox", "sh")
    assert opts.interactive and opts.tty and opts.rm
    assert opts.env == ["A=1", "B=2", "C=3"]
    assert opts.workdir == "/tmp" and opts.name == "web"
    assert args == ["busybox", "sh"]


def test_run_stops_at_the_image():
    opts, args = run_args("-d", "busybox", "ls", "-l", "--rm", "-e", "X")
    assert opts.detach and not opts.rm and opts.env == []
    assert args == ["busybox", "ls", "-l", "--rm", "-e", "X"]


def test_double_dash_ends_flags():
    opts, args = run_args("--rm", "--", "busybox", "-x")
    assert opts.rm and args == ["busybox", "-x"]


def test_other_commands_take_flags_anywhere():
    opts, args = parse(BY_NAME["rm"], ["web", "-f", "db"])
    assert opts.force and args == ["web", "db"]


def test_bool_with_value_and_default_true():
    opts, _ = run_args("--sig-proxy=false", "--rm=true", "busybox")
    assert opts.sig_proxy is False and opts.rm is True
    opts, _ = run_args("busybox")
    assert opts.sig_proxy is True and opts.pull == "missing" and opts.restart == "no"


def test_int_flags():
    opts, _ = parse(BY_NAME["stop"], ["-t", "3", "web"])
    assert opts.timeout == 3
    opts, _ = parse(BY_NAME["ps"], ["-n2"])
    assert opts.last == 2
    with pytest.raises(UsageError) as info:
        parse(BY_NAME["stop"], ["-t", "x", "web"])
    assert info.value.message == ('invalid argument "x" for "-t, --timeout" flag: '
                                  'strconv.ParseInt: parsing "x": invalid syntax')
    assert info.value.status == 125


def test_env_is_validated_and_filled_from_our_environment(monkeypatch):
    monkeypatch.setenv("SKIFF_TEST_VAR", "from-host")
    monkeypatch.delenv("SKIFF_TEST_UNSET", raising=False)
    opts, _ = run_args("-e", "SKIFF_TEST_VAR", "-e", "SKIFF_TEST_UNSET", "busybox")
    assert opts.env == ["SKIFF_TEST_VAR=from-host", "SKIFF_TEST_UNSET"]
    with pytest.raises(UsageError) as info:
        run_args("-e", "=x", "busybox")
    assert info.value.message == ('invalid argument "=x" for "-e, --env" flag: '
                                  'invalid environment variable: =x')


def test_memory_is_validated():
    with pytest.raises(UsageError) as info:
        run_args("-m", "lots", "busybox")
    assert "invalid size: 'lots'" in info.value.message


@pytest.mark.parametrize("argv, message, status", [
    (["--foo", "busybox"], "unknown flag: --foo", 125),
    (["-Z", "busybox"], "unknown shorthand flag: 'Z' in -Z", 125),
    (["-p"], "flag needs an argument: 'p' in -p", 125),
    (["--name"], "flag needs an argument: --name", 125),
    ([], "'skiff run' requires at least 1 argument", 1),
])
def test_run_usage_errors(argv, message, status):
    with pytest.raises(UsageError) as info:
        run_args(*argv)
    assert info.value.message == message
    assert info.value.status == status


def test_usage_error_text_is_dockers():
    cmd = BY_NAME["run"]
    with pytest.raises(UsageError) as info:
        parse(cmd, ["--foo"])
    assert render_usage_error(cmd, info.value) == (
        "unknown flag: --foo\n\nUsage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
        "Run 'skiff run --help' for more information\n")
    with pytest.raises(UsageError) as info:
        parse(cmd, [])
    assert render_usage_error(cmd, info.value) == (
        "skiff: 'skiff run' requires at least 1 argument\n\n"
        "Usage:  skiff run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n"
        "See 'skiff run --help' for more information\n")


@pytest.mark.parametrize("name, argv, message", [
    ("ps", ["x"], "'skiff ps' accepts no arguments"),
    ("logs", [], "'skiff logs' requires 1 argument"),
    ("logs", ["a", "b"], "'skiff logs' requires 1 argument"),
    ("pull", [], "'skiff pull' requires 1 argument"),
    ("images", ["a", "b"], "'skiff images' requires at most 1 argument"),
])
def test_argument_counts(name, argv, message):
    with pytest.raises(UsageError) as info:
        parse(BY_NAME[name], argv)
    assert info.value.message == message and info.value.status == 1


def test_help_flag():
    with pytest.raises(HelpRequested):
        parse(BY_NAME["ps"], ["-h"])
    with pytest.raises(HelpRequested):
        run_args("--help")
    # -h is --hostname for run and create, as in docker
    opts, _ = run_args("-h", "box", "busybox")
    assert opts.hostname == "box"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_help_documents_every_flag(command):
    text = format_help(command)
    assert f"Usage:  skiff {command.usage}" in text
    for flag in command.flags:
        assert f"--{flag.long}" in text
        if flag.short:
            assert f"-{flag.short}, --{flag.long}" in text


def test_help_layout():
    text = format_help(BY_NAME["stop"])
    assert text == (
        "\nUsage:  skiff stop [OPTIONS] CONTAINER [CONTAINER...]\n\n"
        "Stop one or more running containers\n\n"
        "Aliases:\n  skiff container stop, skiff stop\n\n"
        "Options:\n"
        "  -s, --signal string   Signal to send to the container\n"
        "  -t, --timeout int     Seconds to wait before killing the container\n")


def test_split_global():
    opts, words = split_global(["-H", "unix:///x.sock", "--debug", "ps", "-a"])
    assert opts["host"] == "unix:///x.sock" and opts["debug"] and words == ["ps", "-a"]
    opts, words = split_global(["--host=tcp://h:1", "-D", "run", "-H", "x"])
    assert opts["host"] == "tcp://h:1" and words == ["run", "-H", "x"]


def test_lookup_management_commands():
    cmd, rest, group = lookup(["container", "ls", "-a"])
    assert cmd.name == "ps" and rest == ["-a"] and group == "container"
    cmd, rest, group = lookup(["image", "rm", "x"])
    assert cmd.name == "rmi" and rest == ["x"]
    assert lookup(["nosuch"])[0] is None


def test_main_usage_errors(capsys):
    assert main(["run", "--foo"]) == 125
    assert "unknown flag: --foo" in capsys.readouterr().err
    assert main(["ps", "x"]) == 1
    assert "skiff: 'skiff ps' accepts no arguments" in capsys.readouterr().err
    assert main(["nosuch"]) == 1
    assert "skiff: unknown command: skiff nosuch" in capsys.readouterr().err
    assert main(["--bogus"]) == 125
    assert "unknown flag: --bogus" in capsys.readouterr().err


def test_main_version_and_help(capsys):
    from skiff import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"skiff version {__version__}\n"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage:  skiff [OPTIONS] COMMAND" in out and "  run " in out and "-H, --host" in out
    assert main(["ps", "--help"]) == 0
    assert "Usage:  skiff ps [OPTIONS]" in capsys.readouterr().out
    assert main(["container", "ls", "--help"]) == 0
    assert "Usage:  skiff container ls [OPTIONS]" in capsys.readouterr().out
    assert main(["container"]) == 0
    assert "Usage:  skiff container COMMAND" in capsys.readouterr().out


def test_unreachable_daemon_messages(capsys, tmp_path):
    host = f"unix://{tmp_path}/none.sock"
    assert main(["-H", host, "ps"]) == 1
    assert capsys.readouterr().err == (
        f"Cannot connect to the skiff daemon at {host}. Is the skiff daemon running?\n")
    assert main(["-H", host, "run", "busybox"]) == 125
    assert capsys.readouterr().err == (
        f"skiff: Cannot connect to the skiff daemon at {host}. Is the skiff daemon running?\n\n"
        "Run 'skiff run --help' for more information\n")


def test_host_resolution(monkeypatch):
    from skiff.cli.context import resolve_host
    from skiff.client import DEFAULT_HOST

    assert resolve_host(None, {}) == (DEFAULT_HOST, True)
    assert resolve_host(None, {"SKIFF_HOST": "unix:///a.sock"}) == ("unix:///a.sock", False)
    assert resolve_host("unix:///b.sock", {"SKIFF_HOST": "unix:///a.sock"}) == (
        "unix:///b.sock", False)


def test_exec_path_leaves_os_unimported_and_reads_the_environment_without_it():
    """`os` costs ~1 ms to import (its ABCs): the modules exec needs before its request goes
    out, and those that copy its output while it runs, do without it, and the environment is
    read as os.environ would have it."""
    import subprocess
    import sys

    code = ("import sys; "
            "import skiff.cli.main, skiff.cli.context, skiff.cli.spec, skiff.cli.commands, "
            "skiff.cli.commands.exec, skiff.client.client; "
            "assert 'os' not in sys.modules, 'os imported on the way to the request'; "
            "import skiff.client.streams, skiff.cli.attach, skiff.wire.framing; "
            "assert 'os' not in sys.modules, 'os imported while the exec runs'; "
            "from skiff.cli.context import environ, resolve_host; env = environ(); "
            "assert resolve_host(None) == ('unix:///x.sock', False); "
            "import os; assert env == dict(os.environ) and environ() is os.environ")
    subprocess.run([sys.executable, "-I", "-S", "-c",
                    f"import sys; sys.path[:0] = {sys.path!r}; " + code],
                   env={"SKIFF_HOST": "unix:///x.sock", "OTHER": "caf\u00e9"}, check=True)


def test_plain_exec_skips_the_command_table_with_the_options_its_parser_gives():
    """`exec CONTAINER COMMAND...` without flags is run without importing the command table:
    with the same options as exec's parser gives, the command's words (flags included) left
    to the command; any flag before the container takes the usual way."""
    import subprocess
    import sys

    from skiff.cli.commands.exec import plain_options
    from skiff.cli.flags import parse
    from skiff.cli.main import is_plain_exec
    from skiff.cli.spec import BY_NAME

    words = ["exec", "c1", "sh", "-c", "--help"]
    assert is_plain_exec(words)
    opts, args = parse(BY_NAME["exec"], words[1:])
    assert plain_options() == opts and args == words[1:]
    for other in (["exec", "-it", "c1", "sh"], ["exec", "c1"], ["exec", "--", "c1", "sh"],
                  ["container", "exec", "c1", "sh"], ["run", "c1", "sh"]):
        assert not is_plain_exec(other)

    code = ("import sys; from skiff.cli.main import main; "
            "status = main(['-H', 'unix:///nonexistent/skiff.sock', 'exec', 'c1', 'true']); "
            "assert status == 1, status; "
            "assert 'skiff.cli.spec' not in sys.modules, 'the command table was imported'")
    result = subprocess.run([sys.executable, "-I", "-S", "-c",
                             f"import sys; sys.path[:0] = {sys.path!r}; " + code],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Cannot connect to the skiff daemon" in result.stderr
