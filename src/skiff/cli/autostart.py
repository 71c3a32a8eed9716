"""Start skiffd when the default socket is silent and we are root, so that a first command
needs no set-up: detached (own session, stdio to a log file), then wait for `/_ping`."""

from __future__ import annotations

import os
import sys
import time

RUN_DIR = "/run/skiff"
LOCK_PATH = f"{RUN_DIR}/autostart.lock"
LOG_CANDIDATES = ("/var/log/skiffd.log", f"{RUN_DIR}/skiffd.log")
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.05


def daemon_command() -> tuple[list[str], dict[str, str]]:
    """argv and environment: the `skiffd` script if on PATH, else `python3 -m skiff.api.daemon`
    with this skiff importable."""
    import shutil

    env = dict(os.environ)
    script = shutil.which("skiffd")
    if script:
        return [script], env
    import skiff

    src = os.path.dirname(os.path.dirname(os.path.abspath(skiff.__file__)))
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{src}{os.pathsep}{path}" if path else src
    return [sys.executable, "-m", "skiff.api.daemon"], env


def open_log():
    for path in LOG_CANDIDATES:
        try:
            return path, open(path, "ab")
        except OSError:
            continue
    return os.devnull, open(os.devnull, "ab")


def start_daemon(cli, wait: float = WAIT_SECONDS) -> None:
    """Start skiffd unless another process just did, and wait until it answers `/_ping`."""
    import fcntl
    import subprocess

    from skiff.client.client import Client
    from skiff.client.errors import ClientError, DaemonUnreachable

    probe = Client(cli.host, timeout=1.0)
    os.makedirs(RUN_DIR, mode=0o711, exist_ok=True)
    with open(LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            probe.ping()
            return  # someone else started it while we waited for the lock
        except ClientError:
            pass
        argv, env = daemon_command()
        log_path, log = open_log()
        with log:
            cli.log(f"starting {' '.join(argv)} (log: {log_path})")
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, cwd="/", env=env,
            )
        deadline = time.monotonic() + wait
        while True:
            try:
                probe.ping()
                cli.log(f"skiffd is up (pid {proc.pid})")
                return
            except ClientError:
                pass
            code = proc.poll()
            if code is not None:
                raise DaemonUnreachable(
                    f"Cannot connect to the skiff daemon at {cli.host}: skiffd exited with "
                    f"status {code} (see {log_path})", cli.host)
            if time.monotonic() >= deadline:
                raise DaemonUnreachable(
                    f"Cannot connect to the skiff daemon at {cli.host}: skiffd did not answer "
                    f"within {wait:g}s (see {log_path})", cli.host)
            time.sleep(POLL_SECONDS)
