"""The local end of an attached container: copy stdin to the hijacked stream (half-closing
at EOF), its output to stdout/stderr (demultiplexed without a tty), keep the container's tty
the size of ours, and forward signals. One thread, one select() loop; signals arrive through
a wake-up pipe so they are handled between reads, never inside them."""

from __future__ import annotations

import errno
import posix  # os's C half: `import os` builds os's ABCs, ~1 ms of every exec's time
import select
import _signal as signal  # the C module: `signal` builds enums (~1 ms of every command)
import sys

# Signals docker's --sig-proxy forwards (all but the ones about us: SIGCHLD, SIGPIPE,
# SIGWINCH, SIGURG, and those that cannot be caught).
PROXIED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
                   "SIGCONT", "SIGTSTP")
READ_SIZE = 64 * 1024


def terminal_size(fds=(1, 0)) -> tuple[int, int] | None:
    """(height, width) of the first terminal among `fds`."""
    for fd in fds:
        try:
            size = posix.get_terminal_size(fd)
        except OSError:
            continue
        return size.lines, size.columns
    return None


class RawTerminal:
    """Puts a terminal in raw mode for the duration of a `with` block."""

    def __init__(self, fd: int, enabled: bool = True):
        self.fd = fd
        self.enabled = enabled
        self._saved = None

    def __enter__(self):
        if self.enabled:
            import termios
            import tty

            try:
                self._saved = termios.tcgetattr(self.fd)
                tty.setraw(self.fd, termios.TCSANOW)
            except termios.error:
                self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            except termios.error:
                pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = posix.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except InterruptedError:
            continue
        view = view[written:]


class Pump:
    """Moves bytes between the local stdio and a `HijackedStream` until the output ends.

    `resize()` is called on SIGWINCH, `forward(signame)` on a proxied signal (with
    `sig_proxy`).
    """

    def __init__(self, stream, *, tty: bool, stdin_fd: int | None = None, stdout_fd: int = 1,
                 stderr_fd: int = 2, resize=None, forward=None, multiplexed: bool | None = None,
                 on_system=None):
        self.stream = stream
        self.on_system = on_system  # given: frames on stream 3 go to it, not to stderr
        self.tty = tty
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self.resize = resize
        self.forward = forward
        framed = (not tty) if multiplexed is None else multiplexed
        self._decoder = None
        if framed:
            from skiff.wire.framing import FrameDecoder

            self._decoder = FrameDecoder()
        self._wake_r = self._wake_w = -1
        self._old_handlers: dict[int, object] = {}
        self._old_wakeup = -1

    # -- signals --------------------------------------------------------------------------

    def _install_signals(self) -> None:
        wanted = []
        if self.resize is not None:
            wanted.append(signal.SIGWINCH)
        if self.forward is not None:
            wanted += [getattr(signal, name) for name in PROXIED_SIGNALS if hasattr(signal, name)]
        if not wanted:
            return
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        self._wake_r, self._wake_w = posix.pipe()
        posix.set_blocking(self._wake_r, False)
        posix.set_blocking(self._wake_w, False)
        for signum in wanted:
            try:
                self._old_handlers[signum] = signal.signal(signum, lambda *_: None)
            except (OSError, ValueError):
                continue
        self._old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

    def _restore_signals(self) -> None:
        if self._wake_r < 0:
            return
        signal.set_wakeup_fd(self._old_wakeup)
        for signum, handler in self._old_handlers.items():
            try:
                signal.signal(signum, handler)
            except (OSError, ValueError, TypeError):
                pass
        posix.close(self._wake_r)
        posix.close(self._wake_w)
        self._wake_r = self._wake_w = -1

    def _on_signals(self) -> None:
        try:
            data = posix.read(self._wake_r, 256)
        except BlockingIOError:
            return
        for signum in data:
            if signum == signal.SIGWINCH:
                if self.resize is not None:
                    self.resize()
            elif self.forward is not None:
                import signal as signals
                try:
                    name = signals.Signals(signum).name
                except ValueError:
                    continue
                self.forward(name)

    # -- output ---------------------------------------------------------------------------

    def _output(self, data: bytes) -> None:
        if self._decoder is None:
            _write_all(self.stdout_fd, data)
            return
        for stream, payload in self._decoder.feed(data):
            if stream == 3 and self.on_system is not None:
                self.on_system(payload)
                continue
            _write_all(self.stderr_fd if stream >= 2 else self.stdout_fd, payload)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        self._install_signals()
        try:
            self._loop()
        finally:
            self._restore_signals()

    def _loop(self) -> None:
        stream = self.stream
        reading_stdin = self.stdin_fd is not None
        while True:
            if stream.pending:
                self._output(stream.recv(READ_SIZE))
                continue
            watch = [stream.fileno()]
            if reading_stdin:
                watch.append(self.stdin_fd)
            if self._wake_r >= 0:
                watch.append(self._wake_r)
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            if self._wake_r in ready:
                self._on_signals()
            if reading_stdin and self.stdin_fd in ready:
                try:
                    data = posix.read(self.stdin_fd, READ_SIZE)
                except BlockingIOError:
                    data = None
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    data = b""
                if data is not None:
                    if not data:
                        reading_stdin = False
                        stream.close_write()
                    else:
                        try:
                            stream.sendall(data)
                        except OSError:
                            reading_stdin = False
            if stream.fileno() in ready:
                data = stream.recv(READ_SIZE)
                if not data:
                    return
                self._output(data)


def stdio_fd(stream, default: int) -> int:
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return default


def flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (ValueError, OSError):
            pass
