"""Starting skiffd when the default socket is silent: a stand-in `skiffd` on PATH that serves
/_ping, started detached in its own session, with its output in the log file."""

import os
import signal
import sys
import textwrap
import time

import pytest

from skiff.cli import autostart
from skiff.cli.context import Cli
from skiff.client.errors import DaemonUnreachable

FAKE_SKIFFD = textwrap.dedent("""\
    #!{python}
    import os, socket, sys, time
    open(os.environ["FAKE_SKIFFD_PID"], "w").write(str(os.getpid()))
    print("fake skiffd starting", flush=True)
    if os.environ.get("FAKE_SKIFFD_FAIL"):
        sys.exit(3)
    time.sleep(0.2)
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.environ["FAKE_SKIFFD_SOCK"])
    s.listen(8)
    s.settimeout(20)
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            break
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\\r\\nApi-Version: 1.45\\r\\nContent-Length: 2\\r\\n\\r\\nOK")
        c.close()
""")


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "skiffd"
    script.write_text(FAKE_SKIFFD.format(python=sys.executable))
    script.chmod(0o755)
    sock = tmp_path / "skiff.sock"
    pidfile = tmp_path / "skiffd.pid"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_SKIFFD_SOCK", str(sock))
    monkeypatch.setenv("FAKE_SKIFFD_PID", str(pidfile))
    monkeypatch.setattr(autostart, "RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(autostart, "LOCK_PATH", str(tmp_path / "run" / "autostart.lock"))
    monkeypatch.setattr(autostart, "LOG_CANDIDATES", (str(tmp_path / "skiffd.log"),))
    yield f"unix://{sock}", pidfile, tmp_path / "skiffd.log"
    try:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def test_starts_the_daemon_detached_and_waits_for_ping(stand_in, capsys):
    host, pidfile, log = stand_in
    cli = Cli(host, is_default_host=True, debug=True)
    autostart.start_daemon(cli, wait=10)
    pid = int(pidfile.read_text())
    assert os.getsid(pid) == pid  # its own session: our terminal's signals do not reach it
    assert "fake skiffd starting" in log.read_text()
    err = capsys.readouterr().err
    assert "starting" in err and "skiffd is up" in err
    # a second start finds it answering and starts nothing
    autostart.start_daemon(cli, wait=1)
    assert int(pidfile.read_text()) == pid


def test_a_daemon_that_dies_is_reported(stand_in, monkeypatch):
    host, _, log = stand_in
    monkeypatch.setenv("FAKE_SKIFFD_FAIL", "1")
    with pytest.raises(DaemonUnreachable) as info:
        autostart.start_daemon(Cli(host, True), wait=10)
    assert "skiffd exited with status 3" in str(info.value) and str(log) in str(info.value)


def test_autostart_only_for_the_default_host_as_root(monkeypatch):
    monkeypatch.delenv("SKIFF_NO_AUTOSTART", raising=False)
    assert not Cli("unix:///elsewhere.sock", is_default_host=False)._may_autostart()
    assert Cli(is_default_host=True)._may_autostart() == (os.geteuid() == 0)
    monkeypatch.setenv("SKIFF_NO_AUTOSTART", "1")
    assert not Cli(is_default_host=True)._may_autostart()


def test_without_skiffd_on_path_uses_the_module(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    argv, env = autostart.daemon_command()
    assert argv == [sys.executable, "-m", "skiff.api.daemon"]
    import skiff

    src = os.path.dirname(os.path.dirname(os.path.abspath(skiff.__file__)))
    assert env["PYTHONPATH"].split(os.pathsep)[0] == src


def test_quiet_without_debug(stand_in, capsys):
    host, _, _ = stand_in
    start = time.monotonic()
    autostart.start_daemon(Cli(host, True, debug=False), wait=10)
    assert time.monotonic() - start < 10
    assert capsys.readouterr().err == ""


def test_client_starts_the_daemon_on_first_use(stand_in, monkeypatch):
    host, pidfile, _ = stand_in
    cli = Cli(host, is_default_host=True)
    monkeypatch.setattr(Cli, "_may_autostart", lambda self: True)
    client = cli.client()
    assert client.api_version == "1.45"
    assert pidfile.exists()
