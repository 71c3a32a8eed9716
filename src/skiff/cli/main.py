"""`skiff [-H HOST] [--debug] COMMAND`: global flags, dispatch, and the one place where errors
become docker's messages and exit statuses."""

from __future__ import annotations

import sys

from skiff.cli.flags import BOOL, STRING, Command, Flag, HelpRequested, UsageError

GLOBAL = Command(
    "", "[OPTIONS] COMMAND", "A container engine that speaks Docker's language", "",
    [
        Flag("debug", "D", BOOL, help="Enable debug mode"),
        Flag("host", "H", STRING, help="Daemon socket to connect to (default $SKIFF_HOST or "
             "unix:///run/skiff/skiff.sock)", metavar="string"),
        Flag("log-level", "l", STRING, "info", help='Set the logging level ("debug", "info", '
             '"warn", "error", "fatal")'),
        Flag("tls", "", BOOL, help="Use TLS; implied by --tlsverify"),
        Flag("tlscacert", "", STRING, help="Trust certs signed only by this CA (default "
             "$SKIFF_CERT_PATH/ca.pem, else ~/.skiff/ca.pem)", metavar="string"),
        Flag("tlscert", "", STRING, help="Path to TLS certificate file (default "
             "$SKIFF_CERT_PATH/cert.pem)", metavar="string"),
        Flag("tlskey", "", STRING, help="Path to TLS key file (default $SKIFF_CERT_PATH/key.pem)",
             metavar="string"),
        Flag("tlsverify", "", BOOL, help="Use TLS and verify the remote (also "
             "$SKIFF_TLS_VERIFY)"),
        Flag("version", "v", BOOL, help="Print version information and quit"),
    ],
)


def _version_line() -> str:
    from skiff import __version__

    return f"skiff version {__version__}"


def global_help() -> str:
    from skiff.cli.flags import format_flags
    from skiff.cli.spec import COMMANDS, COMMON, GROUP_HELP

    width = max(len(name) for name in [*(c.name for c in COMMANDS), *GROUP_HELP]) + 2
    by_name = {c.name: c for c in COMMANDS}
    lines = ["", "Usage:  skiff [OPTIONS] COMMAND", "", GLOBAL.description, "",
             "Common Commands:"]
    lines += [f"  {name.ljust(width)}{by_name[name].description}" for name in COMMON]
    lines += ["", "Management Commands:"]
    lines += [f"  {name.ljust(width)}{text}" for name, text in GROUP_HELP.items()]
    lines += ["", "Commands:"]
    lines += [f"  {c.name.ljust(width)}{c.description}" for c in COMMANDS
              if c.name not in COMMON]
    lines += ["", "Global Options:", format_flags(GLOBAL.flags).rstrip("\n"), "",
              "Run 'skiff COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def group_help(group: str) -> str:
    from skiff.cli.spec import BY_NAME, GROUP_HELP, GROUPS

    subs = GROUPS[group]
    width = max(len(s) for s in subs) + 2
    lines = ["", f"Usage:  skiff {group} COMMAND", "", GROUP_HELP[group], "", "Commands:"]
    seen = set()
    for sub, target in subs.items():
        if target in seen:
            continue
        seen.add(target)
        lines.append(f"  {sub.ljust(width)}{BY_NAME[target].description}")
    lines += ["", f"Run 'skiff {group} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def split_global(argv: list[str]) -> tuple[dict, list[str]]:
    """Global flags (before the command) and the words from the command on."""
    opts = {"debug": False, "host": None, "version": False, "help": False, "tls": False,
            "tlsverify": False, "tlscacert": None, "tlscert": None, "tlskey": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        i += 1
        if arg == "--":
            break
        name, has_value, value = arg.partition("=")
        if name in ("-D", "--debug"):
            opts["debug"] = True
        elif name in ("-v", "--version"):
            opts["version"] = True
        elif name in ("-h", "--help"):
            opts["help"] = True
        elif name in ("--tls", "--tlsverify"):
            opts[name[2:]] = value.lower() not in ("false", "0") if has_value else True
        elif name in ("--tlscacert", "--tlscert", "--tlskey"):
            if not has_value:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i]
                i += 1
            opts[name[2:]] = value
        elif name in ("-H", "--host", "-l", "--log-level"):
            if not has_value:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}")
                value = argv[i]
                i += 1
            if name in ("-H", "--host"):
                opts["host"] = value
        elif name.startswith("-H") and not name.startswith("--"):
            opts["host"] = arg[2:]
        else:
            raise UsageError(f"unknown flag: {name}" if name.startswith("--")
                             else f"unknown shorthand flag: '{name[1:2]}' in {name}")
    return opts, argv[i:]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        status = _main(argv)
    except KeyboardInterrupt:
        status = 130
    except BrokenPipeError:
        # The reader went away (`skiff ps | head -1`): stop quietly.
        try:
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        status = 141
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    return status


def _main(argv: list[str]) -> int:
    try:
        gopts, words = split_global(argv)
    except UsageError as err:
        sys.stderr.write(f"{err.message}\n\nRun 'skiff --help' for more information\n")
        return 125
    if gopts["version"]:
        print(_version_line())
        return 0
    if is_plain_exec(words) and not gopts["help"]:
        from skiff.cli.commands.exec import cmd_exec, plain_options

        return _run(_cli(gopts), cmd_exec, plain_options(), words[1:], _exec_command)

    from skiff.cli.flags import format_help, parse, render_usage_error
    from skiff.cli.spec import lookup

    command, rest, group = lookup(words)
    if command is None:
        if group is not None:
            if rest and not rest[0].startswith("-"):
                sys.stderr.write(f"skiff: unknown command: skiff {group} {rest[0]}\n\n"
                                 f"Run 'skiff {group} --help' for more information\n")
                return 1
            sys.stdout.write(group_help(group))
            return 0
        if not words or gopts["help"] or words[0] == "help":
            sys.stdout.write(global_help())
            return 0
        sys.stderr.write(f"skiff: unknown command: skiff {words[0]}\n\n"
                         "Run 'skiff --help' for more information\n")
        return 1
    if group is not None:
        command = command.renamed(f"{group} {words[1]}")
    if gopts["help"]:
        sys.stdout.write(format_help(command))
        return 0

    cli = _cli(gopts)
    from skiff.cli import commands

    try:
        opts, args = parse(command, rest, commands.validators(command.name))
    except HelpRequested:
        sys.stdout.write(format_help(command))
        return 0
    except UsageError as err:
        sys.stderr.write(render_usage_error(command, err))
        return err.status

    module_name, func_name = command.handler.split(":")
    # __import__, not importlib.import_module: importlib (and the warnings module it
    # imports) would cost every command ~0.4 ms
    handler = getattr(__import__(module_name, fromlist=[func_name]), func_name)
    return _run(cli, handler, opts, args, lambda: command)


def is_plain_exec(words: list[str]) -> bool:
    """`exec CONTAINER COMMAND...` with no flags: run without the command table (its import
    and the flag parser are ~0.4 ms of exec's way to its request). What follows the
    container is the command's, as for exec's parser (not interspersed)."""
    return len(words) >= 3 and words[0] == "exec" and not words[1].startswith("-")


def _exec_command():
    from skiff.cli.spec import BY_NAME

    return BY_NAME["exec"]


def _cli(gopts: dict):
    from skiff.cli.context import Cli, resolve_host

    host, is_default = resolve_host(gopts["host"])
    cli = Cli(host, is_default, gopts["debug"])
    if host.startswith(("tcp://", "http://")):
        from skiff.client import tls

        cli.tls = tls.from_options(gopts["tls"], gopts["tlsverify"], gopts["tlscacert"],
                                   gopts["tlscert"], gopts["tlskey"])
    return cli


def _run(cli, handler, opts, args: list[str], command_of) -> int:
    """A command's handler, its errors turned into docker's messages and exit statuses
    (`command_of()`: the command, for a usage error's text)."""
    from skiff.cli.context import StatusError

    try:
        result = handler(cli, opts, args)
        return int(result or 0)
    except StatusError as err:
        if err.message:
            cli.err(err.message)
        return err.status
    except UsageError as err:
        from skiff.cli.flags import render_usage_error

        cli.err(render_usage_error(command_of(), err).rstrip("\n"))
        return err.status
    except BrokenPipeError:
        raise
    except Exception as exc:  # the one place foreign errors become messages
        from skiff.cli import commands

        message, status = commands.describe_error(exc)
        if message is None:
            raise
        cli.err(message)
        return status


def entry() -> None:
    """The `skiff` command: main(), then exit without the interpreter's teardown, which
    costs milliseconds on every command and does nothing for us once output is flushed."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            sys.stderr.write(f"{exc.code}\n")
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    from posix import _exit  # os._exit; `os` itself is not needed by every command

    _exit(code)


if __name__ == "__main__":
    entry()
