"""Token authentication against the real registry: a small token server of the test's own
issues RS256 JWTs (x5c header, the certificate in the registry's rootcertbundle) for the
scopes asked, after checking basic credentials; skiffd follows the registry's Bearer
challenge to it. Covers login, push and pull with a token, a wrong password and an expired
token (each a clear error)."""

import base64
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.test_registry import load_as

USER, PASSWORD = "tok", "en-pass"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, d: str):
        self.key_path, self.cert_path = f"{d}/token.key", f"{d}/token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        self.key_path, "-out", self.cert_path, "-days", "2", "-subj",
                        "/CN=skiff test token issuer"], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", self.cert_path, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.lifetime = 300
        self.issued: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                q = parse_qs(urlsplit(self.path).query)
                authz = self.headers.get("Authorization") or ""
                user = ""
                if authz.startswith("Basic "):
                    u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
                    if (u, p) != (USER, PASSWORD):
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    user = u
                access = []
                for scope in q.get("scope", []):
                    kind, name, actions = scope.split(":")
                    allowed = [a for a in actions.split(",") if user]
                    access.append({"type": kind, "name": name, "actions": allowed})
                server.issued.append(",".join(q.get("scope", [])))
                body = json.dumps({"token": server.token(user, access),
                                   "expires_in": server.lifetime}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                """OAuth2 refresh-token grant: the identity token REFRESH-1 is accepted."""
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if form.get("grant_type") != ["refresh_token"] or \
                        form.get("refresh_token") != ["REFRESH-1"]:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for scope in " ".join(form.get("scope", [])).split():
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                server.issued.append("oauth:" + " ".join(form.get("scope", [])))
                body = json.dumps({"access_token": server.token(USER, access),
                                   "expires_in": server.lifetime}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def token(self, user: str, access: list) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": "skiff-test-issuer", "sub": user, "aud": "skiff-test",
                  "exp": now + self.lifetime, "nbf": now - 10, "iat": now - 10,
                  "jti": os.urandom(8).hex(), "access": access}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key_path],
                             input=signing.encode(), check=True, capture_output=True).stdout
        return f"{signing}.{_b64(sig)}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("token"))
    tokens = TokenServer(d)
    r = None
    try:
        from tests.integration import test_registry
        r = test_registry.Registry(str(tmp_path_factory.mktemp("token-registry")))
        with open(r.config, "a") as f:
            f.write(f"auth:\n  token:\n    realm: {tokens.url}\n    service: skiff-test\n"
                    f"    issuer: skiff-test-issuer\n    rootcertbundle: {tokens.cert_path}\n")
        import shutil
        if not shutil.which("docker-registry"):
            pytest.skip("docker-registry is not installed")
        r.start()
        yield r, tokens
    finally:
        if r is not None:
            r.stop()
        tokens.close()


def test_token_login_push_pull(daemon, token_registry, test_images):
    import docker
    r, tokens = token_registry
    sdk = daemon.client()
    with pytest.raises(docker.errors.APIError) as info:
        sdk.api.login(USER, "wrong", registry=r.host, reauth=True)
    assert info.value.status_code == 401
    assert "incorrect username or password" in str(info.value)
    assert daemon.client().api.login(USER, PASSWORD, registry=r.host,
                                     reauth=True)["Status"] == "Login Succeeded"
    name = f"{r.host}/team/tok"
    load_as(daemon, test_images, f"{name}:v1")
    denied = list(daemon.client().api.push(name, "v1", stream=True, decode=True))
    assert "error" in denied[-1], denied
    creds = {"username": USER, "password": PASSWORD}
    pushed = list(daemon.client().api.push(name, "v1", stream=True, decode=True,
                                           auth_config=creds))
    assert not [l for l in pushed if "error" in l], pushed
    assert any("repository:team/tok:pull,push" in s for s in tokens.issued)
    image_id = sdk.images.get(f"{name}:v1").id
    sdk.images.remove(f"{name}:v1")
    daemon.client().images.pull(name, "v1", auth_config=creds)
    assert sdk.images.get(f"{name}:v1").id == image_id


def test_expired_token_is_a_clear_error(daemon, token_registry, test_images):
    r, tokens = token_registry
    tokens.lifetime = -60          # every token is born expired
    try:
        import docker
        with pytest.raises(docker.errors.APIError) as info:
            daemon.client().images.pull(f"{r.host}/team/tok", "v1",
                                        auth_config={"username": USER, "password": PASSWORD})
        assert "unauthorized" in str(info.value) or "authentication required" in str(info.value)
    finally:
        tokens.lifetime = 300


def test_identity_token_refresh_grant(token_registry, tmp_path):
    """Credentials holding an identity (refresh) token use the OAuth2 POST grant."""
    from skiff.errors import SkiffError
    from skiff.oci import image as oci_image
    from skiff.registry import auth, hosts
    from skiff.registry.client import RegistryClient
    from skiff.store import ContentStore
    r, tokens = token_registry
    client = RegistryClient(hosts.endpoint_for(r.host), auth.Credentials("", "", "REFRESH-1"),
                            certs_dir=None)
    fetched = client.get_manifest("team/tok", "v1")
    client.fetch_blob("team/tok", fetched.document.config, ContentStore(tmp_path))
    assert any(s.startswith("oauth:repository:team/tok:pull") for s in tokens.issued)
    bad = RegistryClient(hosts.endpoint_for(r.host), auth.Credentials("", "", "WRONG"),
                         certs_dir=None)
    with pytest.raises(SkiffError, match="unauthorized"):
        bad.get_manifest("team/tok", "v1")
    assert fetched.media_type in (oci_image.DOCKER_MANIFEST, oci_image.OCI_MANIFEST)
