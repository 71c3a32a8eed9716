"""Command-line flags the way the docker CLI (cobra + pflag) reads them, without argparse.

Rules copied from pflag: `-it` bundles short booleans, `-eFOO=1` and `-e FOO=1` and `--env=FOO=1`
and `--env FOO=1` are the same, `--rm=false` sets a boolean, `--` ends the flags. Commands that
run another command (`run`, `create`, `exec`) stop reading flags at the first positional
argument, so `skiff run busybox ls -l` passes `-l` to `ls`.

Errors are `UsageError`s carrying docker's wording and exit status (125 for a bad flag, 1 for a
wrong number of arguments); `render_usage_error` prints them as docker does.
"""

from __future__ import annotations

BOOL, STRING, INT, LIST = "bool", "string", "int", "list"

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class UsageError(Exception):
    """A command line that does not parse. `see` chooses docker's "See"/"Run" closing line."""

    def __init__(self, message: str, status: int = 125, prefixed: bool = False, see: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.prefixed = prefixed
        self.see = see


class HelpRequested(Exception):
    """`--help` was given."""


class Flag:
    """One flag: `long` name, optional one-letter `short`, its kind (bool, string, int or
    list), default, help text and the word shown for its value in --help."""

    __slots__ = ("long", "short", "kind", "default", "help", "metavar", "hidden")

    def __init__(self, long: str, short: str = "", kind: str = BOOL, default=None,
                 help: str = "", metavar: str = "", hidden: bool = False):
        self.long = long
        self.short = short
        self.kind = kind
        self.default = default
        self.help = help
        self.metavar = metavar
        self.hidden = hidden

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    def initial(self):
        if self.kind == LIST:
            return list(self.default or [])
        if self.default is None and self.kind == BOOL:
            return False
        return self.default

    def label(self) -> str:
        if self.short:
            return f"-{self.short}, --{self.long}"
        return f"--{self.long}"


class Command:
    """One command: its flags, how many positional arguments it takes, and its handler as
    "module:function" (imported only when the command runs)."""

    def __init__(self, name: str, usage: str, description: str, handler: str,
                 flags: list[Flag] | None = None, min_args: int = 0,
                 max_args: int | None = None, interspersed: bool = True,
                 aliases: tuple[str, ...] = ()):
        self.name = name
        self.usage = usage
        self.description = description
        self.handler = handler
        self.flags = list(flags or [])
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed
        self.aliases = aliases

    def renamed(self, name: str) -> "Command":
        """The same command under another name (`container ls` for `ps`)."""
        if self.usage.startswith(self.name + " "):   # two-word names: `volume create`
            words = [self.name, self.usage[len(self.name) + 1:]]
        else:
            words = self.usage.split(" ", 1)
        usage = f"{name} {words[1]}" if len(words) > 1 else name
        return Command(name, usage, self.description, self.handler, self.flags,
                       self.min_args, self.max_args, self.interspersed, self.aliases)

    def flag_table(self) -> tuple[dict[str, Flag], dict[str, Flag]]:
        longs = {f.long: f for f in self.flags}
        shorts = {f.short: f for f in self.flags if f.short}
        if "help" not in longs:
            longs["help"] = HELP_FLAG
            if "h" not in shorts:
                shorts["h"] = HELP_FLAG
        return longs, shorts


HELP_FLAG = Flag("help", "h", BOOL, help="Print usage")


class Options(dict):
    """Parsed flags by destination name, readable as attributes: `opts.rm`, `opts.env`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def given(self, name: str) -> bool:
        return name in self["_given"]


def _convert(flag: Flag, value: str, shown: str):
    if flag.kind == INT:
        try:
            return int(value, 10)
        except ValueError:
            raise UsageError(
                f'invalid argument "{value}" for "{shown}" flag: strconv.ParseInt: parsing '
                f'"{value}": invalid syntax'
            ) from None
    if flag.kind == BOOL:
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise UsageError(
            f'invalid argument "{value}" for "{shown}" flag: strconv.ParseBool: parsing '
            f'"{value}": invalid syntax'
        )
    return value


def _store(opts: Options, flag: Flag, value, validators: dict | None):
    shown = flag.label()
    value = _convert(flag, value, shown) if isinstance(value, str) else value
    check = (validators or {}).get(flag.dest)
    if check is not None:
        try:
            value = check(value)
        except ValueError as exc:
            raise UsageError(f'invalid argument "{value}" for "{shown}" flag: {exc}') from None
    if flag.kind == LIST:
        opts[flag.dest].append(value)
    else:
        opts[flag.dest] = value
    opts["_given"].add(flag.dest)


def parse(command: Command, argv: list[str], validators: dict | None = None) -> tuple[Options, list[str]]:
    """(options, positional arguments) for `argv` (the words after the command's name).

    `validators` maps a flag's dest to a function that turns a value into what is stored or
    raises ValueError (docker validates `-e` that way).
    """
    longs, shorts = command.flag_table()
    opts = Options({f.dest: f.initial() for f in command.flags})
    opts["_given"] = set()
    positionals: list[str] = []
    i = 0
    n = len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, value = arg[2:].partition("=")
            flag = longs.get(name)
            if flag is None:
                raise UsageError(f"unknown flag: --{name}")
            if flag is HELP_FLAG:
                raise HelpRequested()
            if flag.kind == BOOL:
                _store(opts, flag, value if has_value else True, validators)
                continue
            if not has_value:
                if i >= n:
                    raise UsageError(f"flag needs an argument: --{name}")
                value = argv[i]
                i += 1
            _store(opts, flag, value, validators)
            continue
        if arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            j = 0
            while j < len(letters):
                letter = letters[j]
                j += 1
                flag = shorts.get(letter)
                if flag is None:
                    raise UsageError(f"unknown shorthand flag: '{letter}' in -{letters}")
                if flag is HELP_FLAG:
                    raise HelpRequested()
                rest = letters[j:]
                if flag.kind == BOOL:
                    if rest.startswith("="):
                        _store(opts, flag, rest[1:], validators)
                        break
                    _store(opts, flag, True, validators)
                    continue
                if rest:
                    value = rest[1:] if rest.startswith("=") else rest
                elif i < n:
                    value = argv[i]
                    i += 1
                else:
                    raise UsageError(f"flag needs an argument: '{letter}' in -{letter}")
                _store(opts, flag, value, validators)
                break
            continue
        positionals.append(arg)
        if not command.interspersed:
            positionals.extend(argv[i:])
            break
    check_args(command, positionals)
    return opts, positionals


def check_args(command: Command, args: list[str]) -> None:
    """docker's cobra argument-count errors (exit status 1)."""
    lo, hi = command.min_args, command.max_args
    name = f"skiff {command.name}"
    if hi == 0 and args:
        raise UsageError(f"'{name}' accepts no arguments", status=1, prefixed=True)
    if lo == hi and len(args) != lo:
        plural = "argument" if lo == 1 else "arguments"
        raise UsageError(f"'{name}' requires {lo} {plural}", status=1, prefixed=True)
    if len(args) < lo:
        plural = "argument" if lo == 1 else "arguments"
        raise UsageError(f"'{name}' requires at least {lo} {plural}", status=1, prefixed=True,
                         see=True)
    if hi is not None and len(args) > hi:
        plural = "argument" if hi == 1 else "arguments"
        raise UsageError(f"'{name}' requires at most {hi} {plural}", status=1, prefixed=True)


def render_usage_error(command: Command, err: UsageError) -> str:
    """The text docker prints for a usage error (to stderr)."""
    head = f"skiff: {err.message}" if err.prefixed else err.message
    verb = "See" if err.see else "Run"
    return (
        f"{head}\n\nUsage:  skiff {command.usage}\n\n"
        f"{verb} 'skiff {command.name} --help' for more information\n"
    )


def _flag_left(flag: Flag) -> str:
    left = f"  -{flag.short}, --{flag.long}" if flag.short else f"      --{flag.long}"
    if flag.kind != BOOL:
        left += " " + (flag.metavar or flag.kind)
    return left


def _flag_help(flag: Flag) -> str:
    text = flag.help
    if flag.kind in (STRING, INT) and flag.default not in (None, ""):
        shown = f'"{flag.default}"' if flag.kind == STRING else str(flag.default)
        text += f" (default {shown})"
    elif flag.kind == BOOL and flag.default is True:
        text += " (default true)"
    return text


def format_flags(flags: list[Flag]) -> str:
    visible = [f for f in flags if not f.hidden]
    if not visible:
        return ""
    lefts = [_flag_left(f) for f in visible]
    width = max(len(left) for left in lefts) + 3
    lines = []
    for left, flag in zip(lefts, visible):
        lines.append(f"{left.ljust(width)}{_flag_help(flag)}".rstrip())
    return "\n".join(lines) + "\n"


def format_help(command: Command) -> str:
    out = [f"\nUsage:  skiff {command.usage}\n\n{command.description}\n"]
    if command.aliases:
        out.append("\nAliases:\n  " + ", ".join(f"skiff {a}" for a in command.aliases) + "\n")
    flags = format_flags(command.flags)
    if flags:
        out.append("\nOptions:\n" + flags)
    return "".join(out)
