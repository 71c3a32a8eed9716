"""`skiff-runtime`: runc's command line over skiff.runtime.

    skiff-runtime [--root DIR] [--log FILE] [--log-format text|json] VERB [OPTIONS] ID ...

Verbs (one module each in runtime/commands/): create, start, state, kill, delete, run,
exec, pause, resume, ps.
The parser is a few lines of our own rather than argparse: start-up time is the point of
a runtime binary. Errors go to stderr (and to --log, as runc writes them for containerd);
the exit status is 1, except for `run`, which exits with the container's status (or 125,
126, 127 when it could not be started).
"""

import os
import sys

VERBS = ("create", "start", "state", "kill", "delete", "run", "exec", "pause", "resume", "ps")

# option -> (attribute, takes a value)
_GLOBAL = {
    "--root": ("root", True), "--log": ("log", True), "--log-format": ("log_format", True),
    "--debug": ("debug", False), "--systemd-cgroup": ("systemd_cgroup", False),
    "--rootless": ("rootless", True), "--criu": ("criu", True),
}
_VERB_OPTS = {
    "create": {"--bundle": ("bundle", True), "-b": ("bundle", True),
               "--pid-file": ("pid_file", True), "--console-socket": ("console_socket", True),
               "--no-pivot": ("no_pivot", False), "--no-new-keyring": ("no_new_keyring", False),
               "--preserve-fds": ("preserve_fds", True)},
    "start": {},
    "state": {},
    "kill": {"--all": ("all", False), "-a": ("all", False)},
    "delete": {"--force": ("force", False), "-f": ("force", False)},
    "run": {"--bundle": ("bundle", True), "-b": ("bundle", True),
            "--pid-file": ("pid_file", True), "--console-socket": ("console_socket", True),
            "--detach": ("detach", False), "-d": ("detach", False),
            "--no-pivot": ("no_pivot", False), "--no-new-keyring": ("no_new_keyring", False),
            "--preserve-fds": ("preserve_fds", True), "--keep": ("keep", False)},
    "exec": {"--process": ("process", True), "-p": ("process", True),
             "--tty": ("tty", False), "-t": ("tty", False), "--detach": ("detach", False),
             "-d": ("detach", False), "--pid-file": ("pid_file", True),
             "--console-socket": ("console_socket", True), "--cwd": ("cwd", True),
             "--env": ("env", True), "-e": ("env", True), "--user": ("user", True),
             "-u": ("user", True)},
    "pause": {}, "resume": {},
    "ps": {"--format": ("format", True), "-f": ("format", True)},
}
_POSITIONALS = {"create": (1, 1), "start": (1, 1), "state": (1, 1), "kill": (1, 2),
                "delete": (1, 1), "run": (1, 1), "exec": (1, 1 << 20),
                "pause": (1, 1), "resume": (1, 1), "ps": (1, 1 << 20)}

USAGE = ("usage: skiff-runtime [--root DIR] [--log FILE] [--log-format text|json] "
         "{create,start,state,kill,delete,run} ...")


class UsageError(Exception):
    pass


class Options:
    def __init__(self):
        self.root = "/run/skiff-runtime"
        self.log = None
        self.log_format = "text"
        self.debug = False
        self.systemd_cgroup = False
        self.rootless = None
        self.criu = None
        self.verb = None
        self.args = []
        self.bundle = None
        self.pid_file = None
        self.console_socket = None
        self.detach = False
        self.force = False
        self.all = False
        self.no_pivot = False
        self.no_new_keyring = False
        self.preserve_fds = None
        self.keep = False
        self.process = self.cwd = self.env = self.user = None
        self.tty = False
        self.format = "table"


def _take(table, argv, i, opts):
    arg = argv[i]
    name, eq, value = arg.partition("=")
    if name not in table:
        raise UsageError(f"unknown option {name}")
    attr, wants = table[name]
    if wants:
        if not eq:
            if i + 1 >= len(argv):
                raise UsageError(f"option {name} needs a value")
            i += 1
            value = argv[i]
        if attr == "env":  # repeatable
            value = (getattr(opts, "env", None) or []) + [value]
        setattr(opts, attr, value)
    else:
        if eq:
            setattr(opts, attr, value.lower() not in ("false", "0"))
        else:
            setattr(opts, attr, True)
    return i + 1


def parse(argv) -> Options:
    opts = Options()
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] in ("-h", "--help"):
            raise UsageError(USAGE)
        if argv[i] in ("-v", "--version"):
            opts.verb = "version"
            return opts
        i = _take(_GLOBAL, argv, i, opts)
    if i >= len(argv):
        raise UsageError(USAGE)
    verb = argv[i]
    if verb not in VERBS:
        raise UsageError(f"unknown command {verb!r}\n{USAGE}")
    opts.verb = verb
    i += 1
    table = _VERB_OPTS[verb]
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            opts.args.extend(argv[i + 1:])
            break
        rest_are_args = verb in ("kill", "exec", "ps") and opts.args
        if arg.startswith("-") and len(arg) > 1 and not rest_are_args:
            i = _take(table, argv, i, opts)
        else:
            opts.args.append(arg)
            i += 1
    low, high = _POSITIONALS[verb]
    if not low <= len(opts.args) <= high:
        raise UsageError(f"{verb}: expected {'ID' if high == 1 else 'ID [SIGNAL]'}"
                         if verb != "exec" else "exec: expected ID [ARGS...]")
    return opts


def _log(opts, message: str) -> None:
    sys.stderr.write(f"skiff-runtime: {message}\n")
    if opts is None or not opts.log:
        return
    import time
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if opts.log_format == "json":
        import json
        line = json.dumps({"level": "error", "msg": message, "time": now})
    else:
        line = f'time="{now}" level=error msg="{message}"'
    try:
        with open(opts.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def main(argv=None) -> int:
    """Run one verb. Called as a program (argv None), exit at once when done: interpreter
    shutdown would cost more than the work of `state` or `kill`."""
    if argv is None:
        status = _main(sys.argv[1:])
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)
    return _main(argv)


def _main(argv) -> int:
    opts = None
    try:
        opts = parse(argv)
        if opts.verb == "version":
            print("skiff-runtime version 0.1.0\nspec: 1.0.2")
            return 0
        import importlib
        module = importlib.import_module(f"skiff.runtime.commands.{opts.verb}")
        return module.run(opts)
    except UsageError as e:
        sys.stderr.write(f"{e}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from skiff.errors import RuntimeFailure, SkiffError
        _log(opts, e.message if isinstance(e, SkiffError) else f"{type(e).__name__}: {e}")
        if opts is not None and opts.verb == "run" and isinstance(e, RuntimeFailure):
            return e.exit_code
        return 1


if __name__ == "__main__":
    sys.exit(main())
