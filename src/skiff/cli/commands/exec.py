"""`exec`, `top`, `pause`, `unpause`, calling the API as the docker CLI does.

exec = POST /containers/{id}/exec -> POST /exec/{id}/start (hijacked; `Detach: true` with -d)
-> POST /exec/{id}/resize (tty) -> copy stdio until the output ends -> GET /exec/{id}/json,
and exit with its ExitCode.

Without -d, skiff first tries skiffd's one-round-trip `POST /skiff/containers/{id}/exec`
(api/execs.py): no /_ping, the stream framed with the exit code in its last frame. A daemon
that does not know it (dockerd, an older skiffd: 404 "page not found" or 405) gets docker's
requests above.
"""

from __future__ import annotations

from skiff.cli.context import StatusError


def _env(opts) -> list[str]:
    from skiff.cli.context import environ

    env = []
    for path in getattr(opts, "env_file", None) or []:
        with open(path, encoding="utf-8") as handle:
            for line in handle.read().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    env.append(line)
    for item in opts.env or []:
        if "=" not in item and item in environ():  # `-e NAME` takes NAME from our env
            item = f"{item}={environ()[item]}"
        env.append(item)
    return env


def plain_options():
    """The options of `exec CONTAINER COMMAND...` given no flags, as exec's parser makes them:
    main() runs that form without the command table (a unit test holds the two equal)."""
    from skiff.cli.flags import Options

    return Options(detach=False, detach_keys=None, env=[], env_file=[], interactive=False,
                   privileged=False, tty=False, user=None, workdir=None, _given=set())


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
    size = None
    if tty and not detach:
        from skiff.cli.attach import terminal_size

        size = terminal_size()
    try:
        if not detach:
            found = _run(cli, container, dict(body, ConsoleSize=list(size) if size else None))
            if found is not None:   # skiffd: one round trip
                client, stream = found
                path = f"/exec/{quote_path(stream.headers.get('x-skiff-exec-id', ''))}"
                code = _pump(cli, client, path, stream, tty=tty, interactive=interactive,
                             detach_keys=opts.detach_keys, versioned=False)
                if code is None:   # no exit frame: detached (or cut off); ask, as docker does
                    code = client.json("GET", f"{path}/json", versioned=False).get("ExitCode")
                return 0 if code is None else int(code)
        client = cli.client()
        exec_id = client.post(f"/containers/{quote_path(container)}/exec",
                              json_body=body)["Id"]
        path = f"/exec/{quote_path(exec_id)}"
        if detach:
            client.request("POST", f"{path}/start", json_body={"Detach": True, "Tty": tty})
            return 0
        start = {"Detach": False, "Tty": tty}
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


def _run(cli, container: str, body: dict):
    """(client, stream) from skiffd's one-round-trip exec, or None from a daemon without
    it. Unversioned, so no /_ping first; an unreachable default daemon is started as
    `cli.client()` starts one."""
    from skiff.client.client import Client, quote_path
    from skiff.client.errors import APIError, DaemonUnreachable

    path = f"/skiff/containers/{quote_path(container)}/exec"
    client = Client(cli.host, tls=cli.tls)
    try:
        try:
            stream = client.hijack("POST", path, json_body=body, versioned=False)
        except DaemonUnreachable:
            client = cli.client()   # starts skiffd where skiff would, else raises
            stream = client.hijack("POST", path, json_body=body, versioned=False)
    except APIError as exc:
        if exc.status == 405 or (exc.status == 404 and exc.message.startswith("page not found")):
            cli.log(f"{path}: {exc.status} {exc.message}; docker's exec requests instead")
            return None
        raise
    return client, stream


def _pump(cli, client, path: str, stream, *, tty: bool, interactive: bool,
          detach_keys: str | None, versioned: bool = True) -> int | None:
    """Copy stdio until the output ends; the exit code if the stream carried one (skiff's
    endpoint), else None. `versioned` False: skiffd's stream (framed even with a tty, its
    size already set at start)."""
    from skiff.cli.attach import Pump, RawTerminal, flush_std, stdio_fd, terminal_size
    from skiff.client.errors import ClientError

    def resize():
        size = terminal_size()
        if size is None:
            return
        try:
            client.request("POST", f"{path}/resize", {"h": size[0], "w": size[1]},
                           versioned=versioned)
        except ClientError:
            pass

    from skiff.wire import jsonfast

    exit_info = []
    if not versioned:
        jsonfast.load_accelerator()   # now, while the process starts, not when it has ended

    def on_system(payload: bytes) -> None:
        try:
            exit_info.append(jsonfast.loads(payload).get("ExitCode"))
        except (ValueError, AttributeError):
            pass

    flush_std()
    stdin_fd = stdio_fd(cli.stdin, 0) if interactive else None
    raw = interactive and tty and cli.isatty(cli.stdin)
    hijacked = stream
    if raw and detach_keys != "":
        from skiff.cli.commands.run import DEFAULT_DETACH_KEYS, _DetachingStream, \
            detach_sequence

        hijacked = _DetachingStream(stream, detach_sequence(detach_keys or DEFAULT_DETACH_KEYS))
    if tty and versioned:
        resize()
    pump = Pump(hijacked, tty=tty, stdin_fd=stdin_fd, stdout_fd=stdio_fd(cli.stdout, 1),
                stderr_fd=stdio_fd(cli.stderr, 2), resize=resize if tty else None,
                multiplexed=stream.multiplexed, on_system=None if versioned else on_system)
    try:
        with RawTerminal(stdin_fd if stdin_fd is not None else 0, enabled=raw):
            pump.run()
    except Exception as exc:
        if type(exc).__name__ != "_Detached":
            raise
    finally:
        stream.close()
    return exit_info[-1] if exit_info else None


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
