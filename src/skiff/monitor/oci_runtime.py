"""Driving an OCI runtime with runc's command line (runc, crun) from the monitor.

    rt = OciRuntime.from_request({"name": "runc", "path": "/usr/sbin/runc", "args": [],
                                  "root": "/run/skiff/runtime-runc"})
    pid, master = rt.create(bundle, cid, stdio=(0, 1, 2))   # create + start; master: a pty
    pid, master = rt.exec(bundle, cid, process, stdio=...)  # exec --detach
    rt.delete(bundle, cid)                                  # delete --force, unmount

The container's init (and each exec'd process) is started detached: the runtime process
exits once it runs, and since the monitor is a child subreaper the init becomes the
monitor's child, reaped through a pidfd exactly as skiff-runtime's are. Stdio is inherited
(pipes), or with a terminal the runtime sends the pty master over --console-socket (a
listening Unix socket at a short path: sun_path holds 107 bytes).

The bundle handed to the runtime is `<container dir>/oci/`: config.json made portable
(runtime/portable.py), its root the image's overlay mounted at `<container dir>/rootfs`.
Errors come from the runtime's JSON log (--log-format json), as docker reports them:
"OCI runtime create failed: <the runtime's message>: unknown". On a hybrid cgroup host every
runtime process sees the host as plain v1 (runtime/hybrid.py), which crun needs to run at all.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile

from skiff.errors import RuntimeFailure

TIMEOUT = 60.0


def exit_status_for(message: str) -> int:
    """docker's exit status for a failed start: 127 not found, 126 cannot invoke, else 125."""
    text = message.lower()
    if "executable file not found" in text or "no such file or directory" in text:
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


class OciRuntime:
    def __init__(self, name: str, path: str, args=(), root: str = "/run/skiff/runtime"):
        self.name = name
        self.path = path
        self.args = list(args)
        self.root = root

    @classmethod
    def from_request(cls, spec: dict) -> "OciRuntime":
        return cls(spec["name"], spec["path"], spec.get("args") or (), spec["root"])

    # ------------------------------------------------------------------ plumbing
    def _log_path(self, cid: str) -> str:
        return os.path.join(self.root, f"{cid}.log")

    def _command(self, cid: str, *verb: str) -> list[str]:
        return [self.path, *self.args, "--root", self.root, "--log", self._log_path(cid),
                "--log-format", "json", *verb]

    def _run(self, cid: str, what: str, argv: list[str], stdio=None) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        try:
            os.unlink(self._log_path(cid))
        except FileNotFoundError:
            pass
        if stdio is None:
            stdin = stdout = stderr = subprocess.DEVNULL
        else:
            stdin, stdout, stderr = stdio
        from skiff.runtime.hybrid import v1_view_preexec
        try:
            done = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                  timeout=TIMEOUT, close_fds=True,
                                  preexec_fn=v1_view_preexec())
        except FileNotFoundError:
            raise RuntimeFailure(f"OCI runtime {what} failed: {self.name}: {self.path}: "
                                 "no such file or directory: unknown", 125) from None
        except subprocess.TimeoutExpired:
            raise RuntimeFailure(f"OCI runtime {what} failed: {self.name} did not answer "
                                 f"within {TIMEOUT:.0f}s: unknown", 125) from None
        if done.returncode != 0:
            message = self._last_error(cid) or f"{self.name} exited with status " \
                                                f"{done.returncode}"
            raise RuntimeFailure(f"OCI runtime {what} failed: {message}: unknown",
                                 exit_status_for(message))

    def _last_error(self, cid: str) -> str:
        message = ""
        try:
            with open(self._log_path(cid)) as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("level") in ("error", "fatal") and entry.get("msg"):
                        message = entry["msg"]
        except OSError:
            pass
        return message

    @staticmethod
    def _read_pid(path: str) -> int:
        with open(path) as f:
            return int(f.read().strip())

    # ------------------------------------------------------------------ verbs
    def prepare(self, bundle: str, cid: str) -> str:
        """The runtime's bundle for container dir `bundle` (rootfs mounted); its path."""
        return prepare_bundle(bundle, self._lowers_dir(cid))

    def _lowers_dir(self, cid: str) -> str:
        """Where a user-namespaced container's idmapped layers are mounted: outside its
        directory, so that removing that directory can never reach into a layer."""
        return os.path.join(self.root, "layers", cid)

    def create(self, bundle: str, cid: str, *, stdio=None, tty: bool = False):
        """Create and start the container; (init pid, pty master fd or None)."""
        oci_dir = self.prepare(bundle, cid)
        pid_file = os.path.join(oci_dir, "init.pid")
        try:
            with _ConsoleSocket(tty) as console:
                argv = self._command(cid, "create", "--bundle", oci_dir, "--pid-file",
                                     pid_file)
                if console.path:
                    argv += ["--console-socket", console.path]
                self._run(cid, "create", argv + [cid], None if tty else stdio)
                master = console.receive() if tty else None
            pid = self._read_pid(pid_file)
            try:
                self._run(cid, "start", self._command(cid, "start", cid))
            except RuntimeFailure:
                if master is not None:
                    os.close(master)
                raise
        except BaseException:
            self.delete(bundle, cid)
            raise
        return pid, master

    def exec(self, bundle: str, cid: str, process: dict, *, stdio=None, tty: bool = False):
        """Start `process` (an OCI process object; what it leaves out comes from the
        container's config.json) in the container; (pid, pty master fd or None)."""
        with open(os.path.join(bundle, "config.json")) as f:
            base = json.load(f).get("process") or {}
        full = {**base, **process, "terminal": tty}
        work = tempfile.mkdtemp(prefix="exec-", dir=os.path.join(bundle, "oci"))
        try:
            process_file = os.path.join(work, "process.json")
            pid_file = os.path.join(work, "pid")
            with open(process_file, "w") as f:
                json.dump(full, f)
            with _ConsoleSocket(tty) as console:
                argv = self._command(cid, "exec", "--detach", "--process", process_file,
                                     "--pid-file", pid_file)
                if console.path:
                    argv += ["--console-socket", console.path]
                try:
                    self._run(cid, "exec", argv + [cid], None if tty else stdio)
                except RuntimeFailure as exc:   # docker's exec status: 126 unless not found
                    raise RuntimeFailure(exc.message, 126 if exc.exit_code == 125
                                         else exc.exit_code) from None
                master = console.receive() if tty else None
            return self._read_pid(pid_file), master
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def delete(self, bundle: str, cid: str) -> None:
        """Forget the container (its cgroups, the runtime's state) and unmount its rootfs;
        fine to call for a container the runtime never created."""
        try:
            self._run(cid, "delete", self._command(cid, "delete", "--force", cid))
        except RuntimeFailure as exc:
            if "does not exist" not in exc.message and "not found" not in exc.message:
                raise
        finally:
            release_bundle(bundle, self._lowers_dir(cid))
            try:
                os.unlink(self._log_path(cid))
            except FileNotFoundError:
                pass


def prepare_bundle(bundle: str, lowers_dir: str) -> str:
    """`<bundle>/oci/`: config.json made portable (runtime/portable.py) and its rootfs, the
    image's overlay, mounted at `<bundle>/rootfs` (through idmapped layers under `lowers_dir`
    for a user namespace); where those layers are is noted for release_bundle."""
    from skiff.runtime.portable import mapped_root, mount_rootfs, portable_config

    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    rootfs = os.path.join(bundle, "rootfs")
    oci_dir = os.path.join(bundle, "oci")
    portable = portable_config(config, rootfs)
    os.makedirs(oci_dir, exist_ok=True)
    with open(os.path.join(oci_dir, "config.json"), "w") as f:
        json.dump(portable, f)
    root = mapped_root(config)
    if root is not None:
        _give_to_root(bundle, portable, root)
        with open(os.path.join(oci_dir, LOWERS_FILE), "w") as f:
            f.write(lowers_dir)
    mount_rootfs(config, rootfs, lowers_dir)
    return oci_dir


def release_bundle(bundle: str, lowers_dir: str | None = None) -> None:
    """Unmount what prepare_bundle mounted (fine when it mounted nothing)."""
    from skiff.runtime.portable import unmount_rootfs

    if lowers_dir is None:
        try:
            with open(os.path.join(bundle, "oci", LOWERS_FILE)) as f:
                lowers_dir = f.read().strip() or None
        except OSError:
            pass
    unmount_rootfs(os.path.join(bundle, "rootfs"), lowers_dir)
    if lowers_dir and not _any_mount_under(lowers_dir):
        shutil.rmtree(lowers_dir, ignore_errors=True)


LOWERS_FILE = "lowers"   # in <bundle>/oci: where the idmapped layers are mounted


def user_namespaced(bundle: str) -> bool:
    """Whether config.json gives the container a new user namespace."""
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            namespaces = (json.load(f).get("linux") or {}).get("namespaces") or ()
    except (OSError, ValueError):
        return False
    return any(n.get("type") == "user" and not n.get("path") for n in namespaces)


def _any_mount_under(path: str) -> bool:
    prefix = path.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].startswith(prefix) for line in f)


def _give_to_root(bundle: str, config: dict, root: tuple[int, int]) -> None:
    """A user-namespaced container's root reaches its bundle (group search on the container
    dir) and owns the files bound from it (/etc/hosts, hostname, resolv.conf), as docker
    chowns them to the remapped root."""
    uid, gid = root
    os.chown(bundle, 0, gid)
    os.chmod(bundle, 0o710)
    prefix = bundle.rstrip("/") + "/"
    for m in config.get("mounts") or ():
        source = m.get("source") or ""
        if m.get("type") == "bind" and source.startswith(prefix) and os.path.isfile(source):
            st = os.stat(source)
            if st.st_uid == 0:
                os.chown(source, uid, gid)


class _ConsoleSocket:
    """A listening socket for --console-socket, in a short temporary directory."""

    def __init__(self, wanted: bool):
        self.wanted = wanted
        self.dir = None
        self.path = None
        self.sock = None

    def __enter__(self):
        if self.wanted:
            self.dir = tempfile.mkdtemp(prefix="skiff-console-")
            self.path = os.path.join(self.dir, "s")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(self.path)
            self.sock.listen(1)
        return self

    def receive(self) -> int:
        """The pty master the runtime sent before it exited."""
        self.sock.settimeout(5)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            raise RuntimeFailure("the runtime sent no terminal", 125) from None
        with conn:
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 4096, 1)
        if not fds:
            raise RuntimeFailure("the runtime sent no terminal", 125)
        return fds[0]

    def __exit__(self, *exc):
        if self.sock is not None:
            self.sock.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False


RUNTIME_FILE = "runtime.json"   # written by the engine (engine/runtimes.py) at create


def recorded(bundle: str) -> dict | None:
    """The runtime the engine chose for the container in `bundle`; None: skiff's own."""
    try:
        with open(os.path.join(bundle, RUNTIME_FILE)) as f:
            spec = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise RuntimeFailure(f"{os.path.join(bundle, RUNTIME_FILE)}: unreadable", 125) \
            from None
    return spec if isinstance(spec, dict) and spec.get("path") else None


def cleanup(bundle: str, cid: str) -> None:
    """After the init is gone: what its runtime left (cgroups, state, the rootfs mount)."""
    spec = recorded(bundle)
    if spec is not None:
        OciRuntime.from_request(spec).delete(bundle, cid)
        return
    from skiff import runtime
    runtime.cleanup(bundle, cid)
    release_bundle(bundle)   # skiff-runtime in a user namespace: its premounted rootfs
