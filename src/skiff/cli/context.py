"""What every command gets: the daemon's host, a lazily connected client (starting skiffd when
the default socket is silent and we are root), the standard streams, and `StatusError` for
leaving with a given exit status."""

from __future__ import annotations

import sys

from skiff.client import DEFAULT_HOST


class StatusError(Exception):
    """Leave with `status`, after printing `message` (if any) to stderr."""

    def __init__(self, status: int, message: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message


def environ():
    """os.environ, without importing os on the way to a command's request (~1 ms of `exec`'s
    start-up: `os` builds its ABCs): until os is imported nothing can have changed the
    environment, and posix.environ (bytes) is what os.environ is made from."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ
    import posix

    return {key.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
            for key, value in posix.environ.items()}


def resolve_host(flag_host: str | None, env=None) -> tuple[str, bool]:
    """(host, is_default): `-H`, else `SKIFF_HOST`, else the default socket."""
    if flag_host:
        return flag_host, flag_host == DEFAULT_HOST
    env = (environ() if env is None else env).get("SKIFF_HOST")
    if env:
        return env, env == DEFAULT_HOST
    return DEFAULT_HOST, True


class Cli:
    def __init__(self, host: str = DEFAULT_HOST, is_default_host: bool = True,
                 debug: bool = False, stdin=None, stdout=None, stderr=None):
        self.host = host
        self.is_default_host = is_default_host
        self.debug = debug
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._client = None
        self.tls = None  # client.tls.TLSConfig for a tcp:// daemon

    # -- the daemon ----------------------------------------------------------------------

    def client(self):
        """A Client whose API version is negotiated (so the daemon is known to answer)."""
        if self._client is None:
            from skiff.client.client import Client
            from skiff.client.errors import DaemonUnreachable

            client = Client(self.host, tls=self.tls)
            try:
                client.negotiate()
            except DaemonUnreachable:
                if not self._may_autostart():
                    raise
                from skiff.cli.autostart import start_daemon

                start_daemon(self)
                client.negotiate()
            self.log(f"API version {client.api_version} on {self.host}")
            self._client = client
        return self._client

    def _may_autostart(self) -> bool:
        import os

        if not self.is_default_host or os.environ.get("SKIFF_NO_AUTOSTART"):
            return False
        return hasattr(os, "geteuid") and os.geteuid() == 0

    # -- output --------------------------------------------------------------------------

    def out(self, text: str = "", end: str = "\n") -> None:
        self.stdout.write(text + end)

    def err(self, text: str = "", end: str = "\n") -> None:
        self.stdout.flush()
        self.stderr.write(text + end)
        self.stderr.flush()

    def out_bytes(self, data: bytes) -> None:
        self._write_bytes(self.stdout, data)

    def err_bytes(self, data: bytes) -> None:
        self._write_bytes(self.stderr, data)

    @staticmethod
    def _write_bytes(stream, data: bytes) -> None:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8", "replace"))
            stream.flush()

    def log(self, text: str) -> None:
        """A line on stderr with --debug only."""
        if self.debug:
            self.err(f"[debug] {text}")

    def isatty(self, stream) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False
