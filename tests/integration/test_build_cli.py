"""`skiff build` from the command line: contexts (dir, tar, stdin), -f, -t, -q, --iidfile,
--output, .dockerignore applied before sending, errors and exit codes (thin smoke tests)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile

import pytest

pytestmark = pytest.mark.root


@pytest.fixture(autouse=True)
def cli_cache(tmp_path, monkeypatch):
    """The CLI's memory of what the daemon holds (~/.cache/skiff) kept out of $HOME."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def ctxdir():
    path = tempfile.mkdtemp(prefix="skiff-buildcli-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(root, files):
    for name, content in files.items():
        full = os.path.join(root, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)


def run(daemon, image, *cmd):
    return daemon.client().containers.run(image, list(cmd) or None, remove=True).decode()


def test_tags_quiet_iidfile(daemon, ctxdir):
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY . /ctx/\nCMD ls -a /ctx\n",
                   "kept.txt": "k", "secret.key": "s", "logs/a.log": "l",
                   ".dockerignore": "*.key\nlogs\n"})
    iid = os.path.join(ctxdir, "..", os.path.basename(ctxdir) + ".iid")
    try:
        result = daemon.cli("build", "-q", "-t", "cli-a:1", "-t", "cli-b", "--iidfile", iid,
                            ctxdir)
        assert result.returncode == 0, result.stderr.decode()
        image_id = result.stdout.decode().strip()
        assert image_id.startswith("sha256:") and len(image_id) == 71
        with open(iid) as f:
            assert f.read() == image_id
    finally:
        if os.path.exists(iid):
            os.unlink(iid)
    client = daemon.client()
    assert client.images.get("cli-a:1").id == client.images.get("cli-b:latest").id == image_id
    listing = run(daemon, "cli-a:1").split()
    # .dockerignore'd files were never sent; the Dockerfile and .dockerignore always are
    assert set(listing) == {".", "..", "Dockerfile", ".dockerignore", "kept.txt"}


def test_progress_output_and_failure_exit_code(daemon, ctxdir):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo visible\nRUN exit 5\n"})
    result = daemon.cli("build", ctxdir)
    assert result.returncode == 5
    out = result.stdout.decode()
    assert "Step 1/3 : FROM busybox" in out and "visible" in out
    assert "The command '/bin/sh -c exit 5' returned a non-zero code: 5" in \
        result.stderr.decode()


def test_dockerfile_flag_outside_context_and_stdin(daemon, ctxdir):
    write(ctxdir, {"ctx/data": "from-ctx\n", "other.Dockerfile":
                   "FROM busybox\nCOPY data /\nCMD cat /data\n"})
    result = daemon.cli("build", "-t", "cli-f:1", "-f", os.path.join(ctxdir, "other.Dockerfile"),
                        os.path.join(ctxdir, "ctx"))
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-f:1") == "from-ctx\n"
    result = daemon.cli("build", "-t", "cli-fstdin:1", "-f", "-", os.path.join(ctxdir, "ctx"),
                        input=b"FROM busybox\nCOPY data /d2\nCMD cat /d2\n")
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-fstdin:1") == "from-ctx\n"
    # a lone Dockerfile on stdin: an empty context
    result = daemon.cli("build", "-t", "cli-stdin:1", "-",
                        input=b"FROM busybox\nRUN echo lone > /l\nCMD cat /l\n")
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-stdin:1") == "lone\n"


def test_context_tar_on_stdin(daemon):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY x /x\nCMD cat /x\n"),
                           ("x", b"from-tar\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = daemon.cli("build", "-t", "cli-tar:1", "-", input=buf.getvalue())
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-tar:1") == "from-tar\n"


def test_output_tar_and_local(daemon, ctxdir):
    write(ctxdir, {"Dockerfile": "FROM busybox\nRUN echo made > /made\n"})
    out_tar = ctxdir + ".tar"
    out_dir = ctxdir + ".out"
    try:
        result = daemon.cli("build", "--output", f"type=tar,dest={out_tar}", ctxdir)
        assert result.returncode == 0, result.stderr.decode()
        with tarfile.open(out_tar) as tar:
            assert tar.extractfile("made").read() == b"made\n"
        result = daemon.cli("build", "-o", out_dir, ctxdir)
        assert result.returncode == 0, result.stderr.decode()
        with open(os.path.join(out_dir, "made")) as f:
            assert f.read() == "made\n"
        assert os.path.exists(os.path.join(out_dir, "bin", "busybox"))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        if os.path.exists(out_tar):
            os.unlink(out_tar)
    assert daemon.client().containers.list(all=True) == []


def test_errors(daemon, ctxdir):
    result = daemon.cli("build", os.path.join(ctxdir, "nope"))
    assert result.returncode == 1
    assert 'unable to prepare context: path "' in result.stderr.decode()
    result = daemon.cli("build", ctxdir)
    assert result.returncode == 1 and "Dockerfile" in result.stderr.decode()
    write(ctxdir, {"Dockerfile": "FROM busybox\nNOPE\n"})
    result = daemon.cli("build", ctxdir)
    assert result.returncode == 1
    assert "dockerfile parse error line 2: unknown instruction: NOPE" in result.stderr.decode()


def test_kept_context_sends_only_changes(daemon, ctxdir):
    import hashlib
    import socket

    from skiff.cli.commands.build import context_entries, manifest_of
    from skiff.dockerignore import IgnoreMatcher

    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY . /c/\nCMD ls /c && cat /c/v\n",
                   "v": "1\n", "gone": "x"})
    result = daemon.cli("build", "-t", "cli-kept:1", ctxdir)
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-kept:1") == "Dockerfile\ngone\nv\n1\n"
    os.unlink(os.path.join(ctxdir, "gone"))
    write(ctxdir, {"v": "2\n"})
    result = daemon.cli("build", "-t", "cli-kept:1", ctxdir)
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-kept:1") == "Dockerfile\nv\n2\n"
    # the daemon holds the context now: an unchanged one needs no file at all
    root = os.path.abspath(ctxdir)
    key = hashlib.sha256(f"{socket.gethostname()}\0{root}".encode()).hexdigest()
    entries = [(rel, st, "") for rel, st in context_entries(root, IgnoreMatcher([]), set())]
    api = daemon.client().api
    need = api._result(api._post_json(api._url("/skiff/build/context"), manifest_of(entries, {}),
                                      params={"key": key}), json=True)["Need"]
    assert need == []
    write(ctxdir, {"v": "3\n"})
    entries = [(rel, st, "") for rel, st in context_entries(root, IgnoreMatcher([]), set())]
    need = api._result(api._post_json(api._url("/skiff/build/context"), manifest_of(entries, {}),
                                      params={"key": key}), json=True)["Need"]
    assert need == ["v"]


def test_kept_context_when_the_cli_memory_is_wrong(daemon, ctxdir, cli_cache):
    write(ctxdir, {"Dockerfile": "FROM busybox\nCOPY . /c/\nCMD cat /c/v\n", "v": "1\n"})
    assert daemon.cli("build", "-t", "cli-mem:1", ctxdir).returncode == 0
    states = list((cli_cache / "skiff" / "build-contexts").iterdir())
    assert len(states) == 1
    # the CLI believes the daemon has a v it does not have: the daemon says so, the CLI asks
    state = json.loads(states[0].read_text())
    write(ctxdir, {"v": "2\n"})
    st = os.lstat(os.path.join(ctxdir, "v"))
    state = [e if e[0] != "v" else [e[0], e[1], e[2], st.st_size, st.st_mtime_ns, e[5]]
             for e in state]
    states[0].write_text(json.dumps(state))
    result = daemon.cli("build", "-t", "cli-mem:1", ctxdir)
    assert result.returncode == 0, result.stderr.decode()
    assert run(daemon, "cli-mem:1") == "2\n"
