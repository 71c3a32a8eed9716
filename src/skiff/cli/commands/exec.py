"""`exec`, `top`, `pause`, `unpause`, calling the API as the docker CLI does.

exec = POST /containers/{id}/exec -> POST /exec/{id}/start (hijacked; `Detach: true` with -d)
-> POST /exec/{id}/resize (tty) -> copy stdio until the output ends -> GET /exec/{id}/json,
and exit with its ExitCode.
"""

from __future__ import annotations

from skiff.cli.context import StatusError


def _env(opts) -> list[str]:
    import os

    env = []
    for path in getattr(opts, "env_file", None) or []:
        with open(path, encoding="utf-8") as handle:
            for line in handle.read().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    env.append(line)
    for item in opts.env or []:
        if "=" not in item and item in os.environ:  # `-e NAME` takes NAME from our env
            item = f"{item}={os.environ[item]}"
        env.append(item)
    return env


def cmd_exec(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError, ClientError

    container, command = args[0], args[1:]
    tty, interactive, detach = opts.tty, opts.interactive, opts.detach
    if interactive and tty and not detach and not cli.isatty(cli.stdin):
        raise StatusError(1, "the input device is not a TTY")
    try:
        env = _env(opts)
    except OSError as exc:
        raise StatusError(1, str(exc)) from None
    body = {"User": opts.user or "", "Privileged": bool(opts.privileged), "Tty": tty,
            "AttachStdin": interactive and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "Detach": detach, "Cmd": command, "Env": env,
            "WorkingDir": opts.workdir or ""}
    if opts.detach_keys:
        body["DetachKeys"] = opts.detach_keys
    client = cli.client()
    try:
        exec_id = client.post(f"/containers/{quote_path(container)}/exec",
                              json_body=body)["Id"]
        path = f"/exec/{quote_path(exec_id)}"
        if detach:
            client.request("POST", f"{path}/start", json_body={"Detach": True, "Tty": tty})
            return 0
        start = {"Detach": False, "Tty": tty}
        size = None
        if tty:
            from skiff.cli.attach import terminal_size

            size = terminal_size()
            if size:
                start["ConsoleSize"] = list(size)
        stream = client.hijack("POST", f"{path}/start", json_body=start)
        _pump(cli, client, path, stream, tty=tty, interactive=interactive,
              detach_keys=opts.detach_keys)
        info = client.get(f"{path}/json")
    except APIError as exc:
        raise StatusError(1, exc.explanation()) from None
    except ClientError as exc:
        raise StatusError(1, str(exc)) from None
    code = info.get("ExitCode")
    return 0 if code is None else int(code)


def _pump(cli, client, path: str, stream, *, tty: bool, interactive: bool,
          detach_keys: str | None) -> None:
    from skiff.cli.attach import Pump, RawTerminal, flush_std, stdio_fd, terminal_size
    from skiff.client.errors import ClientError

    def resize():
        size = terminal_size()
        if size is None:
            return
        try:
            client.request("POST", f"{path}/resize", {"h": size[0], "w": size[1]})
        except ClientError:
            pass

    flush_std()
    stdin_fd = stdio_fd(cli.stdin, 0) if interactive else None
    raw = interactive and tty and cli.isatty(cli.stdin)
    hijacked = stream
    if raw and detach_keys != "":
        from skiff.cli.commands.run import DEFAULT_DETACH_KEYS, _DetachingStream, \
            detach_sequence

        hijacked = _DetachingStream(stream, detach_sequence(detach_keys or DEFAULT_DETACH_KEYS))
    if tty:
        resize()
    pump = Pump(hijacked, tty=tty, stdin_fd=stdin_fd, stdout_fd=stdio_fd(cli.stdout, 1),
                stderr_fd=stdio_fd(cli.stderr, 2), resize=resize if tty else None,
                multiplexed=stream.multiplexed)
    try:
        with RawTerminal(stdin_fd if stdin_fd is not None else 0, enabled=raw):
            pump.run()
    except Exception as exc:
        if type(exc).__name__ != "_Detached":
            raise
    finally:
        stream.close()


def _each(cli, args, action) -> int:
    from skiff.client.errors import APIError

    errors = []
    for name in args:
        try:
            action(name)
        except APIError as exc:
            errors.append(exc.explanation())
            continue
        cli.out(name)
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


def cmd_pause(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    return _each(cli, args, lambda n: client.request("POST", f"/containers/{quote_path(n)}/pause"))


def cmd_unpause(cli, opts, args) -> int:
    from skiff.client.client import quote_path

    client = cli.client()
    return _each(cli, args,
                 lambda n: client.request("POST", f"/containers/{quote_path(n)}/unpause"))


def cmd_top(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    try:
        result = cli.client().get(f"/containers/{quote_path(args[0])}/top", params)
    except APIError as exc:
        raise StatusError(1, exc.explanation()) from None
    titles = result.get("Titles") or []
    rows = [titles] + [list(p) for p in result.get("Processes") or []]
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(titles))]
    for row in rows:
        cells = [c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row)]
        cli.out("   ".join(cells).rstrip())
    return 0
