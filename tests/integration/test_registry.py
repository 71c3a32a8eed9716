"""Pull and push through skiffd against the real registry (Debian's docker-registry, the CNCF
distribution registry) started on loopback with its own port and storage."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from skiff.registry import auth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, tmp: str, htpasswd: str | None = None):
        self.dir = tmp
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None
        config = [
            "version: 0.1", "log:", "  level: error",
            "storage:", "  filesystem:", f"    rootdirectory: {tmp}/data",
            "  delete:", "    enabled: true",
            "http:", f"  addr: 127.0.0.1:{self.port}",
        ]
        if htpasswd:
            config += ["auth:", "  htpasswd:", "    realm: skiff-test", f"    path: {htpasswd}"]
        self.config = os.path.join(tmp, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(config) + "\n")

    def start(self) -> None:
        log = open(os.path.join(self.dir, "registry.log"), "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdout=log,
                                     stderr=log)
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return       # 401: it answers
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def load_as(daemon, test_images, name: str, *more: str) -> None:
    """Load the busybox test image under another name (the API has no tag endpoint yet):
    the same archive with its manifest.json's RepoTags rewritten."""
    import io
    import tarfile
    out = io.BytesIO()
    with tarfile.open(os.path.join(test_images, "busybox.tar")) as src, \
            tarfile.open(fileobj=out, mode="w") as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isreg() else None
            if info.name == "manifest.json":
                doc = json.loads(data)
                for entry in doc:
                    entry["RepoTags"] = [name, *more]
                data = json.dumps(doc).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    daemon.client().images.load(out.getvalue())


def _registry(tmp_path_factory, **kw):
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed: scripts/install.sh --deps")
    r = Registry(str(tmp_path_factory.mktemp("registry")), **kw)
    r.start()
    return r


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    r = _registry(tmp_path_factory)
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def seeded(registry, daemon, test_images):
    """busybox pushed by skiff itself (tagged into the registry, then pushed)."""
    daemon.load_busybox(test_images)
    sdk = daemon.client()
    load_as(daemon, test_images, f"{registry.host}/library/busybox:latest")
    lines = list(sdk.api.push(f"{registry.host}/library/busybox", "latest", stream=True,
                              decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert any(l.get("aux", {}).get("Digest") for l in lines)
    return f"{registry.host}/library/busybox"


def test_pull_streams_docker_progress(daemon, seeded):
    sdk = daemon.client()
    sdk.images.remove(f"{seeded}:latest")
    lines = list(sdk.api.pull(seeded, "latest", stream=True, decode=True))
    statuses = [l.get("status", "") for l in lines]
    assert statuses[0] == "Pulling from library/busybox"
    assert any(s.startswith("Digest: sha256:") for s in statuses)
    assert statuses[-1] == f"Status: Downloaded newer image for {seeded}:latest"
    image = sdk.images.get(f"{seeded}:latest")
    assert image.id == sdk.images.get("busybox").id
    digest = [s for s in statuses if s.startswith("Digest: ")][0].split()[1]
    assert f"{seeded}@{digest}" in image.attrs["RepoDigests"]
    again = list(sdk.api.pull(seeded, "latest", stream=True, decode=True))
    assert again[-1]["status"] == f"Status: Image is up to date for {seeded}:latest"


def test_pull_into_empty_store_and_run(daemon, seeded, registry):
    sdk = daemon.client()
    for img in sdk.images.list():
        sdk.images.remove(img.id, force=True)
    result = daemon.cli("pull", f"{seeded}:latest")
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    assert b"Pull complete" in result.stdout or b"Download complete" in result.stdout
    out = sdk.containers.run(f"{seeded}:latest", ["echo", "pulled"], remove=True)
    assert out == b"pulled\n"


def test_pull_by_digest(daemon, seeded):
    sdk = daemon.client()
    digest = sdk.api.inspect_distribution(f"{seeded}:latest")["Descriptor"]["digest"]
    lines = list(sdk.api.pull(f"{seeded}@{digest}", stream=True, decode=True))
    assert not [l for l in lines if "error" in l], lines
    assert sdk.images.get(f"{seeded}@{digest}").id == sdk.images.get(f"{seeded}:latest").id


def test_unknown_tag_and_repository(daemon, seeded, registry):
    import docker
    sdk = daemon.client()
    with pytest.raises(docker.errors.NotFound, match="manifest unknown"):
        sdk.images.pull(seeded, "nosuch")
    with pytest.raises(docker.errors.NotFound):
        sdk.images.pull(f"{registry.host}/nosuch/repo", "latest")
    result = daemon.cli("pull", f"{registry.host}/nosuch/repo")
    assert result.returncode != 0
    assert b"not found" in result.stderr


def test_docker_hub_not_contacted_by_test_daemons(daemon):
    """The suite's daemons are limited to loopback registries (SKIFF_REGISTRY_ALLOW)."""
    result = daemon.cli("pull", "nosuchimage:1.0")
    assert result.returncode != 0
    assert b"allowed registries" in result.stderr


def test_push_of_unknown_image(daemon, registry):
    import docker
    sdk = daemon.client()
    with pytest.raises(docker.errors.NotFound):
        list(sdk.api.push(f"{registry.host}/never/was", "latest", stream=True))


def _htpasswd(path: str, user: str, password: str) -> None:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    with open(path, "w") as f:
        f.write(f"{user}:{hashed}\n")


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("htpasswd")
    path = os.path.join(tmp, "htpasswd")
    _htpasswd(path, "alice", "s3cret")
    r = _registry(tmp_path_factory, htpasswd=path)
    try:
        yield r
    finally:
        r.stop()


def test_basic_auth_login_push_pull(daemon, private_registry, test_images):
    import docker
    sdk = daemon.client()
    host = private_registry.host
    load_as(daemon, test_images, f"{host}/team/bb:v1")
    denied = list(sdk.api.push(f"{host}/team/bb", "v1", stream=True, decode=True))
    assert "error" in denied[-1] and "unauthorized" in denied[-1]["error"]
    with pytest.raises(docker.errors.APIError) as info:
        sdk.api.login("alice", "wrong", registry=host, reauth=True)
    assert info.value.status_code == 401
    assert sdk.api.login("alice", "s3cret", registry=host, reauth=True)["Status"] == \
        "Login Succeeded"
    sdk = daemon.client()     # docker-py remembers a login: a fresh client has no credentials
    creds = {"username": "alice", "password": "s3cret"}
    pushed = list(sdk.api.push(f"{host}/team/bb", "v1", stream=True, decode=True,
                               auth_config=creds))
    assert not [l for l in pushed if "error" in l], pushed
    image_id = sdk.images.get(f"{host}/team/bb:v1").id
    sdk.images.remove(f"{host}/team/bb:v1")
    with pytest.raises(docker.errors.APIError):
        sdk.images.pull(f"{host}/team/bb", "v1")
    sdk.images.pull(f"{host}/team/bb", "v1", auth_config=creds)
    assert sdk.images.get(f"{host}/team/bb:v1").id == image_id


def test_cli_login_push_logout(daemon, private_registry, test_images, tmp_path):
    import stat
    import sys
    host = private_registry.host
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "cfg"),
               PYTHONPATH=os.path.join(os.path.dirname(os.path.dirname(
                   os.path.dirname(os.path.abspath(__file__)))), "src"))

    def cli(*args, input=None):
        return subprocess.run([sys.executable, "-m", "skiff.cli.main", "-H", daemon.host,
                               *args], input=input, capture_output=True, env=env, timeout=60)

    bad = cli("login", "-u", "alice", "--password-stdin", host, input=b"wrong\n")
    assert bad.returncode != 0 and b"401" not in bad.stdout
    assert not (tmp_path / "cfg" / "config.json").exists()
    good = cli("login", "-u", "alice", "--password-stdin", host, input=b"s3cret\n")
    assert good.returncode == 0, good.stderr
    assert b"Login Succeeded" in good.stdout
    path = tmp_path / "cfg" / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.load_credentials(host, str(path)) == auth.Credentials("alice", "s3cret")
    load_as(daemon, test_images, f"{host}/team/cli:v2")
    pushed = cli("push", f"{host}/team/cli:v2")
    assert pushed.returncode == 0, pushed.stderr
    assert b"v2: digest: sha256:" in pushed.stdout
    out = cli("logout", host)
    assert out.returncode == 0 and b"Removing login credentials" in out.stdout
    assert not auth.load_credentials(host, str(path))
    denied = cli("push", f"{host}/team/cli:v2")
    assert denied.returncode != 0 and b"unauthorized" in denied.stderr


def test_cli_pull_and_run_send_stored_credentials(daemon, private_registry, test_images,
                                                  tmp_path):
    """`skiff pull` and `skiff run` of a missing image send X-Registry-Auth made from the
    config file (`auths`, or a credential helper as docker runs it), as the docker CLI does."""
    import sys
    host = private_registry.host
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "src")
    cfg = tmp_path / "cfg"
    helper_dir = tmp_path / "bin"
    helper_dir.mkdir()
    env = dict(os.environ, DOCKER_CONFIG=str(cfg), PYTHONPATH=src,
               PATH=f"{helper_dir}:{os.environ.get('PATH', '')}")

    def cli(*args, input=None):
        return subprocess.run([sys.executable, "-m", "skiff.cli.main", "-H", daemon.host,
                               *args], input=input, capture_output=True, env=env, timeout=60)

    sdk = daemon.client()
    sdk.login("alice", "s3cret", registry=host, reauth=True)
    load_as(daemon, test_images, f"{host}/team/pulled:v1")
    assert not [l for l in sdk.api.push(f"{host}/team/pulled", "v1", stream=True, decode=True,
                                        auth_config={"username": "alice",
                                                     "password": "s3cret"})
                if "error" in l]
    sdk.images.remove(f"{host}/team/pulled:v1")
    denied = cli("pull", f"{host}/team/pulled:v1")
    assert denied.returncode != 0 and b"unauthorized" in denied.stderr, denied
    assert cli("login", "-u", "alice", "--password-stdin", host,
               input=b"s3cret\n").returncode == 0
    pulled = cli("pull", f"{host}/team/pulled:v1")
    assert pulled.returncode == 0, pulled.stderr
    sdk.images.remove(f"{host}/team/pulled:v1")
    ran = cli("run", "--rm", f"{host}/team/pulled:v1", "echo", "pulled-by-run")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.endswith(b"pulled-by-run\n")
    sdk.images.remove(f"{host}/team/pulled:v1")
    # a credential helper instead of `auths`
    helper = helper_dir / "docker-credential-skifftest"
    helper.write_text("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n"
                      f"[ \"$server\" = {host} ] || exit 1\n"
                      "echo '{\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n")
    helper.chmod(0o755)
    (cfg / "config.json").write_text(json.dumps({"credsStore": "skifftest"}))
    pulled = cli("pull", f"{host}/team/pulled:v1")
    assert pulled.returncode == 0, pulled.stderr
    sdk.images.remove(f"{host}/team/pulled:v1")


def _docker_cli(daemon, tmp_path):
    path = shutil.which("docker")
    if not path:
        pytest.skip("no docker CLI installed")
    env = dict(os.environ, DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(tmp_path / "docker"))
    env.pop("DOCKER_CONTEXT", None)
    return lambda *a, **kw: subprocess.run([path, *a], env=env, capture_output=True,
                                           timeout=60, **kw)


def test_docker_cli_pull_push_login_against_skiffd(daemon, seeded, private_registry,
                                                   test_images, tmp_path):
    docker = _docker_cli(daemon, tmp_path)
    sdk = daemon.client()
    for img in sdk.images.list():
        sdk.images.remove(img.id, force=True)
    pulled = docker("pull", f"{seeded}:latest")
    assert pulled.returncode == 0, pulled.stderr
    assert b"Pull complete" in pulled.stdout and b"Digest: sha256:" in pulled.stdout
    assert f"Status: Downloaded newer image for {seeded}:latest".encode() in pulled.stdout
    missing = docker("pull", f"{seeded}:nosuch")
    assert missing.returncode != 0
    assert b"manifest unknown" in missing.stderr
    ran = docker("run", "--rm", f"{seeded}:latest", "echo", "via docker")
    assert ran.returncode == 0 and ran.stdout == b"via docker\n", ran.stderr
    host = private_registry.host
    login = docker("login", "-u", "alice", "--password-stdin", host, input=b"s3cret\n")
    assert login.returncode == 0, login.stderr
    load_as(daemon, test_images, f"{host}/team/dockercli:v3")
    pushed = docker("push", f"{host}/team/dockercli:v3")
    assert pushed.returncode == 0, pushed.stderr
    assert b"v3: digest: sha256:" in pushed.stdout


def test_skopeo_reads_what_skiff_pushed(daemon, seeded, tmp_path):
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    out = tmp_path / "oci"
    result = subprocess.run(["skopeo", "copy", "--src-tls-verify=false",
                             f"docker://{seeded}:latest", f"oci:{out}:latest"],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    index = json.load(open(out / "index.json"))
    assert index["manifests"][0]["digest"].startswith("sha256:")


def test_pull_all_tags(daemon, seeded, registry, test_images):
    load_as(daemon, test_images, f"{registry.host}/multi/tags:a", f"{registry.host}/multi/tags:b")
    sdk = daemon.client()
    for tag in ("a", "b"):
        list(sdk.api.push(f"{registry.host}/multi/tags", tag, stream=True))
        sdk.images.remove(f"{registry.host}/multi/tags:{tag}")
    result = daemon.cli("pull", "-a", f"{registry.host}/multi/tags")
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    tags = sdk.images.get(f"{registry.host}/multi/tags:a").tags
    assert {f"{registry.host}/multi/tags:a", f"{registry.host}/multi/tags:b"} <= set(tags)


def test_run_pulls_a_missing_image(daemon, seeded):
    sdk = daemon.client()
    for img in sdk.images.list():
        sdk.images.remove(img.id, force=True)
    result = daemon.cli("run", "--rm", f"{seeded}:latest", "echo", "pulled by run")
    assert result.returncode == 0, result.stderr.decode() + daemon.log()
    assert result.stdout.endswith(b"pulled by run\n")
    assert f"Unable to find image '{seeded}:latest' locally".encode() in result.stderr


def test_pull_with_a_wrong_password(daemon, private_registry, test_images):
    import docker
    host = private_registry.host
    load_as(daemon, test_images, f"{host}/team/pw:v1")
    creds = {"username": "alice", "password": "s3cret"}
    list(daemon.client().api.push(f"{host}/team/pw", "v1", stream=True, auth_config=creds))
    daemon.client().images.remove(f"{host}/team/pw:v1")
    with pytest.raises(docker.errors.APIError) as info:
        daemon.client().images.pull(f"{host}/team/pw", "v1",
                                    auth_config={"username": "alice", "password": "nope"})
    assert info.value.status_code == 404     # as docker answers a refused pull
    assert "pull access denied" in str(info.value) and "unauthorized" in str(info.value)
