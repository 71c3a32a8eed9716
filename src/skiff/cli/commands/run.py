"""`run`, `create` and `start`: the calls and their order follow the docker CLI.

run = create (pulling on 404) -> attach (hijacked, unless -d) -> wait (next-exit, or removed
with --rm; its answer's head must arrive before start, so the wait is registered) -> start ->
resize (tty) -> copy stdio until the output ends -> exit with the wait's StatusCode.
"""

from __future__ import annotations

import os

from skiff.cli.context import StatusError

WAIT_REGISTERED_TIMEOUT = 3.0   # how long to wait for the head of the `wait` answer
REMOVED_AFTER_FAILED_START = 10.0
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


# -- errors in docker's run/create wording -----------------------------------------------------


def _message(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    if callable(explanation):
        return explanation()
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, OSError):
        from skiff.cli.commands import os_error_text

        return os_error_text(exc)
    return str(exc)


def command_error(exc_or_text, command: str = "run", status: int = 125) -> StatusError:
    """docker's wording: `run` says `docker: MESSAGE` plus a help line and exits 125 (or
    126/127); `create` prints the bare message and exits 1."""
    text = exc_or_text if isinstance(exc_or_text, str) else _message(exc_or_text)
    if command != "run":
        return StatusError(1, text)
    return StatusError(status, f"skiff: {text}\n\nRun 'skiff {command} --help' for more information")


# -- pulling ---------------------------------------------------------------------------------


def pull_image(cli, client, image: str, platform: str | None, out, quiet: bool) -> None:
    """`POST /images/create?fromImage=NAME&tag=TAG`, its progress rendered on `out`."""
    from skiff.cli import refs
    from skiff.cli.progress import render_stream

    ref = refs.parse(image)
    params = {"fromImage": ref.name, "tag": ref.api_tag}
    if platform:
        params["platform"] = platform
    from skiff.cli.commands.registry import auth_header, server_key
    headers = auth_header(server_key(ref.domain))  # what `skiff login` stored
    with client.request("POST", "/images/create", params, stream=True,
                        headers=headers) as resp:
        if quiet:
            from skiff.cli.progress import ProgressRenderer

            sink = ProgressRenderer(_NullWriter(), False)
            for message in resp.iter_json():
                sink.feed(message)
            return
        is_tty = cli.isatty(out)
        width = 80
        if is_tty:
            from skiff.cli.attach import terminal_size

            size = terminal_size((2, 1))
            width = size[1] if size else 80
        render_stream(resp.iter_json(), out, is_tty, width)


class _NullWriter:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _read_env_files(paths: list[str]) -> list[str]:
    texts = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            texts.append(handle.read())
    return texts


def create_container(cli, opts, image: str, command: list[str], *, detach: bool,
                     verb: str) -> str:
    """The new container's id; pulls the image when the daemon does not have it."""
    from skiff.cli import refs
    from skiff.cli.config import build_create
    from skiff.client.errors import APIError, ClientError

    try:
        ref = refs.parse(image)
        env_files = _read_env_files(opts.env_file)
        body, params = build_create(opts, image, command, detach=detach, env_files=env_files)
    except (ValueError, OSError) as exc:
        raise command_error(exc, verb) from None
    if opts.pull not in ("always", "missing", "never"):
        raise command_error(f'invalid pull option: \'{opts.pull}\': must be one of "always", '
                            f'"missing" or "never"', verb)
    try:
        client = cli.client()
        if opts.pull == "always":
            pull_image(cli, client, image, opts.platform, cli.stderr, opts.quiet)
        try:
            created = client.post("/containers/create", params, body)
        except APIError as exc:
            if exc.status != 404 or opts.pull == "never" or "image" not in exc.message.lower():
                raise
            cli.err(f"Unable to find image '{ref.familiar()}' locally")
            pull_image(cli, client, image, opts.platform, cli.stderr, opts.quiet)
            created = client.post("/containers/create", params, body)
    except ClientError as exc:
        raise command_error(exc, verb) from None
    except Exception as exc:
        from skiff.errors import SkiffError

        if isinstance(exc, SkiffError):  # a pull stream's error message
            raise command_error(exc, verb) from None
        raise
    for warning in created.get("Warnings") or []:
        cli.err(f"WARNING: {warning}")
    return created["Id"]


# -- attached sessions -------------------------------------------------------------------------


from skiff.wire.detach import EscapeDetector, detach_sequence  # noqa: E402,F401


class Session:
    """An attached container: the hijacked stream, the pending wait, and the local stdio."""

    def __init__(self, cli, client, container_id: str, *, tty: bool, stdin: bool,
                 auto_remove: bool, sig_proxy: bool, detach_keys: str | None, verb: str):
        self.cli = cli
        self.client = client
        self.id = container_id
        self.tty = tty
        self.stdin = stdin
        self.auto_remove = auto_remove
        self.sig_proxy = sig_proxy and not tty
        self.detach_keys = detach_keys
        self.verb = verb
        self.stream = None
        self.waiter = None
        self.detached = False

    def attach(self) -> None:
        from skiff.client.client import quote_path

        params = {"stream": 1, "stdin": 1 if self.stdin else 0, "stdout": 1, "stderr": 1}
        if self.detach_keys:
            params["detachKeys"] = self.detach_keys
        self.stream = self.client.hijack("POST", f"/containers/{quote_path(self.id)}/attach",
                                         params)

    def begin_wait(self) -> None:
        from skiff.client.client import quote_path

        condition = "removed" if self.auto_remove else "next-exit"
        self.waiter = self.client.begin("POST", f"/containers/{quote_path(self.id)}/wait",
                                        {"condition": condition})
        if not self.waiter.headers_ready(WAIT_REGISTERED_TIMEOUT):
            self.cli.log("the daemon did not acknowledge the wait request; starting anyway")

    def wait_status(self, timeout: float | None = None) -> int:
        if self.waiter is None:
            return 0
        if timeout is not None and not self.waiter.headers_ready(timeout):
            return 125
        from skiff.client.errors import APIError

        try:
            result = self.waiter.response().json() or {}
        except APIError as exc:
            if exc.status == 404 and self.auto_remove:
                return 0
            raise
        error = (result.get("Error") or {}).get("Message")
        if error:
            self.cli.err(error)
            return 125
        return int(result.get("StatusCode", 0))

    def _resize(self, retries: int = 0) -> None:
        from skiff.cli.attach import terminal_size
        from skiff.client.client import quote_path
        from skiff.client.errors import ClientError

        size = terminal_size()
        if size is None:
            return
        height, width = size
        for attempt in range(retries + 1):
            try:
                self.client.request("POST", f"/containers/{quote_path(self.id)}/resize",
                                    {"h": height, "w": width})
                return
            except ClientError as exc:
                self.cli.log(f"resize failed: {exc}")
                if attempt < retries:
                    import time

                    time.sleep(0.01 * (attempt + 1))

    def _forward(self, signame: str) -> None:
        from skiff.client.client import quote_path
        from skiff.client.errors import ClientError

        name = signame[3:] if signame.startswith("SIG") else signame
        try:
            self.client.request("POST", f"/containers/{quote_path(self.id)}/kill",
                                {"signal": name})
        except ClientError as exc:
            self.cli.log(f"forwarding {signame} failed: {exc}")

    def pump(self) -> None:
        from skiff.cli.attach import Pump, RawTerminal, flush_std, stdio_fd

        flush_std()
        stdin_fd = stdio_fd(self.cli.stdin, 0) if self.stdin else None
        raw = self.stdin and self.tty and self.cli.isatty(self.cli.stdin)
        if self.tty:
            self._resize(retries=5)
        stream = self.stream
        if raw and self.detach_keys != "":
            stream = _DetachingStream(stream, detach_sequence(self.detach_keys
                                                             or DEFAULT_DETACH_KEYS))
        pump = Pump(stream, tty=self.tty, stdin_fd=stdin_fd,
                    stdout_fd=stdio_fd(self.cli.stdout, 1), stderr_fd=stdio_fd(self.cli.stderr, 2),
                    resize=self._resize if self.tty else None,
                    forward=self._forward if self.sig_proxy else None,
                    multiplexed=self.stream.multiplexed)
        try:
            with RawTerminal(stdin_fd if stdin_fd is not None else 0, enabled=raw):
                pump.run()
        except _Detached:
            self.detached = True
        finally:
            self.stream.close()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
        if self.waiter is not None:
            self.waiter.close()


class _Detached(Exception):
    pass


class _DetachingStream:
    """A HijackedStream whose input passes through the detach-key detector."""

    def __init__(self, stream, sequence: bytes):
        self._stream = stream
        self._detector = EscapeDetector(sequence)

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def sendall(self, data: bytes) -> None:
        data, detached = self._detector.feed(data)
        if data:
            self._stream.sendall(data)
        if detached:
            raise _Detached()


def _warm_up_attach() -> None:
    """Import what streaming the container's output needs. Called while the start request is
    in flight, so that these imports overlap the daemon's work instead of following it."""
    import skiff.cli.attach  # noqa: F401
    import skiff.wire.errors  # noqa: F401
    import skiff.wire.framing  # noqa: F401


def _start(cli, client, container_id: str, session: Session | None, verb: str) -> None:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError, ClientError

    try:
        pending = client.begin("POST", f"/containers/{quote_path(container_id)}/start")
        if session is not None:
            _warm_up_attach()  # while the daemon starts the container, not after
        pending.response()
    except ClientError as exc:
        if session is not None:
            if session.stream is not None:
                session.stream.close()
            if session.auto_remove:
                try:
                    session.wait_status(REMOVED_AFTER_FAILED_START)
                except ClientError:
                    pass
            session.close()
        status = 125
        if isinstance(exc, APIError):
            from skiff.cli.config import start_error_status

            status = start_error_status(exc.message)
        raise command_error(exc, verb, status) from None


def _check_tty(cli, attach_stdin: bool, tty: bool) -> None:
    if attach_stdin and tty and not cli.isatty(cli.stdin):
        raise StatusError(1, "the input device is not a TTY")


# -- the commands ------------------------------------------------------------------------------


def cmd_run(cli, opts, args) -> int:
    image, command = args[0], args[1:]
    detach = opts.detach
    if opts.detach_keys:
        try:
            detach_sequence(opts.detach_keys)
        except ValueError as exc:
            raise command_error(str(exc)) from None
    if not detach:
        _check_tty(cli, opts.interactive, opts.tty)
    container_id = create_container(cli, opts, image, command, detach=detach, verb="run")
    try:
        client = cli.client()
    except Exception as exc:  # pragma: no cover - create already reached the daemon
        raise command_error(exc) from None
    if detach:
        _start(cli, client, container_id, None, "run")
        cli.out(container_id)
        return 0

    from skiff.client.errors import ClientError

    session = Session(cli, client, container_id, tty=opts.tty, stdin=opts.interactive,
                      auto_remove=opts.rm, sig_proxy=opts.sig_proxy,
                      detach_keys=opts.detach_keys, verb="run")
    try:
        session.attach()
        session.begin_wait()
    except ClientError as exc:
        session.close()
        raise command_error(exc) from None
    _start(cli, client, container_id, session, "run")
    try:
        session.pump()
        if session.detached:
            return 0
        return session.wait_status()
    except ClientError as exc:
        raise command_error(exc) from None
    finally:
        session.close()


def cmd_create(cli, opts, args) -> int:
    image, command = args[0], args[1:]
    container_id = create_container(cli, opts, image, command, detach=False, verb="create")
    cli.out(container_id)
    return 0


def cmd_start(cli, opts, args) -> int:
    from skiff.client.client import quote_path
    from skiff.client.errors import APIError

    client = cli.client()
    if not (opts.attach or opts.interactive):
        failed = []
        for name in args:
            try:
                client.request("POST", f"/containers/{quote_path(name)}/start")
            except APIError as exc:
                cli.err(exc.explanation())
                failed.append(name)
                continue
            cli.out(name)
        if failed:
            raise StatusError(1, f"Error: failed to start containers: {', '.join(failed)}")
        return 0

    if len(args) > 1:
        raise StatusError(1, "you cannot start and attach multiple containers at once")
    info = client.get(f"/containers/{quote_path(args[0])}/json")
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    attach_stdin = bool(opts.interactive and config.get("OpenStdin"))
    _check_tty(cli, attach_stdin, tty)
    auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
    session = Session(cli, client, info["Id"], tty=tty, stdin=attach_stdin,
                      auto_remove=auto_remove, sig_proxy=True, detach_keys=opts.detach_keys,
                      verb="start")
    try:
        session.attach()
        session.begin_wait()
        try:
            client.request("POST", f"/containers/{quote_path(info['Id'])}/start")
        except APIError as exc:
            raise StatusError(1, exc.explanation()) from None
        session.pump()
        if session.detached:
            return 0
        return session.wait_status()
    finally:
        session.close()
