"""registry/auth.py, hosts.py and manifest.py: the pure parts of the distribution client."""

import base64
import json
import os
import stat

import pytest

from skiff.errors import InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci.digest import digest_of
from skiff.registry import auth, hosts, manifest


@pytest.mark.parametrize("header, expected", [
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/busybox:pull"',
     [("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                  "scope": "repository:library/busybox:pull"})]),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ('basic realm=x', [("basic", {"realm": "x"})]),
    ('Basic realm="a", Bearer realm="https://t/token", error="invalid_token"',
     [("basic", {"realm": "a"}), ("bearer", {"realm": "https://t/token",
                                            "error": "invalid_token"})]),
    ('Bearer realm="q\\"uote", scope="a,b"', [("bearer", {"realm": 'q"uote', "scope": "a,b"})]),
    ('Negotiate abc==, Basic realm=r', [("negotiate", {"": "abc=="}), ("basic", {"realm": "r"})]),
    ("", []),
])
def test_parse_challenges(header, expected):
    got = auth.parse_challenges(header)
    assert [(c.scheme, c.params) for c in got] == expected


@pytest.mark.parametrize("header", ['Bearer realm="unterminated', "=oops", "x" * 20000])
def test_parse_challenges_refuses_garbage(header):
    with pytest.raises(InvalidArgument):
        auth.parse_challenges(header)


def test_pick_prefers_bearer():
    cs = auth.parse_challenges('Basic realm="a", Bearer realm="b"')
    assert auth.pick(cs).scheme == "bearer"
    assert auth.pick(auth.parse_challenges("Digest realm=x")) is None


def test_token_url():
    c = auth.Challenge("bearer", {"realm": "https://auth.example/token", "service": "reg"})
    url = auth.token_url(c, [auth.repository_scope("library/busybox")], account="me")
    assert url == ("https://auth.example/token?service=reg&"
                   "scope=repository%3Alibrary%2Fbusybox%3Apull&account=me")
    c2 = auth.Challenge("bearer", {"realm": "http://t/tok?x=1", "scope": "repository:a:pull"})
    assert auth.token_url(c2, []) == "http://t/tok?x=1&scope=repository%3Aa%3Apull"
    assert auth.repository_scope("a/b", ("pull", "push")) == "repository:a/b:pull,push"
    for realm in (None, "ftp://x/", "/relative"):
        with pytest.raises(InvalidArgument):
            auth.token_url(auth.Challenge("bearer", {"realm": realm} if realm else {}), [])


def test_parse_token_response():
    t = auth.parse_token_response(b'{"token": "abc", "expires_in": 300}', now=1000)
    assert t == auth.Token("abc", 1300) and t.valid(now=1200) and not t.valid(now=1299)
    t = auth.parse_token_response(b'{"access_token": "o"}', now=0)
    assert t.value == "o" and t.expires_at == auth.DEFAULT_TOKEN_LIFETIME
    for body in (b"not json", b"[]", b'{"token": ""}', b"{}"):
        with pytest.raises(InvalidArgument):
            auth.parse_token_response(body)


def test_registry_auth_header_round_trip():
    creds = auth.Credentials("u", "p:w")
    header = auth.registry_auth_header(creds, "localhost:5000")
    assert auth.decode_registry_auth_header(header) == creds
    assert auth.decode_registry_auth_header(header.rstrip("=")) == creds
    assert not auth.decode_registry_auth_header("%%%")
    assert not auth.decode_registry_auth_header(None)
    assert auth.basic_header("u", "p") == "Basic " + base64.b64encode(b"u:p").decode()


def test_credentials_file(tmp_path):
    path = str(tmp_path / "cfg" / "config.json")
    assert not auth.load_credentials("localhost:5000", path)
    auth.store_credentials("localhost:5000", auth.Credentials("alice", "s3cret"), path)
    auth.store_credentials(hosts.DOCKER_HUB_AUTH_KEY, auth.Credentials("bob", "x"), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.load(open(path))
    assert doc["auths"]["localhost:5000"]["auth"] == base64.b64encode(b"alice:s3cret").decode()
    assert auth.load_credentials("localhost:5000", path) == auth.Credentials("alice", "s3cret")
    assert auth.load_credentials(hosts.auth_key("docker.io"), path).username == "bob"
    auth.store_credentials("localhost:5000", None, path)
    assert not auth.load_credentials("localhost:5000", path)
    assert auth.load_credentials(hosts.DOCKER_HUB_AUTH_KEY, path).username == "bob"


def test_config_path():
    assert auth.config_path({"DOCKER_CONFIG": "/d"}) == "/d/config.json"
    assert auth.config_path({"HOME": "/h"}) == "/h/.skiff/config.json"


@pytest.mark.parametrize("domain, host, secure", [
    ("docker.io", "registry-1.docker.io", True),
    ("index.docker.io", "registry-1.docker.io", True),
    ("quay.io", "quay.io", True),
    ("localhost:5000", "localhost:5000", False),
    ("127.0.0.1:5000", "127.0.0.1:5000", False),
    ("[::1]:5000", "[::1]:5000", False),
    ("10.1.2.3:5000", "10.1.2.3:5000", False),      # listed as insecure below (CIDR)
    ("myreg:5000", "myreg:5000", False),             # listed by name
])
def test_endpoints(domain, host, secure):
    e = hosts.endpoint_for(domain, ["10.0.0.0/8", "myreg:5000"])
    assert (e.host, e.secure) == (host, secure)


def test_auth_key():
    assert hosts.auth_key("docker.io") == "https://index.docker.io/v1/"
    assert hosts.auth_key("localhost:5000") == "localhost:5000"


def _desc(digest_char: str, platform=None, media_type=oci_image.OCI_MANIFEST):
    d = {"mediaType": media_type, "digest": "sha256:" + digest_char * 64, "size": 10}
    if platform:
        d["platform"] = platform
    return d


INDEX = json.dumps({"schemaVersion": 2, "mediaType": oci_image.OCI_INDEX, "manifests": [
    _desc("1", {"os": "linux", "architecture": "arm", "variant": "v6"}),
    _desc("2", {"os": "linux", "architecture": "arm", "variant": "v7"}),
    _desc("3", {"os": "linux", "architecture": "amd64"}),
    _desc("4", {"os": "linux", "architecture": "arm64", "variant": "v8"}),
    _desc("5", {"os": "unknown", "architecture": "unknown"}),
    _desc("6", {"os": "windows", "architecture": "amd64"}),
]}).encode()


@pytest.mark.parametrize("wanted, digit", [
    ("linux/amd64", "3"), ("linux/arm/v7", "2"), ("linux/arm/v6", "1"), ("linux/arm", "1"),
    ("linux/arm64", "4"), ("linux/arm64/v8", "4"), ("windows/amd64", "6"),
])
def test_select_platform(wanted, digit):
    index = manifest.parse(INDEX, oci_image.OCI_INDEX).document
    got = manifest.select_platform(index, oci_image.Platform.parse(wanted))
    assert got.digest == "sha256:" + digit * 64


def test_select_platform_missing():
    index = manifest.parse(INDEX, None).document
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        manifest.select_platform(index, oci_image.Platform.parse("linux/s390x"))


def test_parse_manifest_kinds_and_digest():
    m = json.dumps({"schemaVersion": 2, "mediaType": oci_image.DOCKER_MANIFEST,
                    "config": _desc("a", media_type=oci_image.DOCKER_CONFIG),
                    "layers": [_desc("b", media_type=oci_image.DOCKER_LAYER_GZIP)]}).encode()
    f = manifest.parse(m, oci_image.DOCKER_MANIFEST + "; charset=utf-8")
    assert not f.is_index and f.digest == digest_of(m) and f.data is m
    assert f.document.layers[0].digest == "sha256:" + "b" * 64
    # no Content-Type: the body says (or its shape does)
    assert manifest.parse(INDEX, "application/octet-stream").is_index
    assert not manifest.parse(m, None).is_index
    with pytest.raises(InvalidArgument, match="manifest verification failed"):
        manifest.parse(m, None, expected_digest="sha256:" + "0" * 64)
    with pytest.raises(InvalidArgument, match="schema 1"):
        manifest.parse(b'{"schemaVersion": 1, "name": "x"}', None)
    for bad in (b"nope", b"[]", b'{"schemaVersion": 2}'):
        with pytest.raises(InvalidArgument):
            manifest.parse(bad, oci_image.OCI_MANIFEST)


def test_parse_errors():
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'
    errs = manifest.parse_errors(body)
    assert [str(e) for e in errs] == ["manifest unknown: manifest unknown"]
    assert manifest.parse_errors(b"<html>") == []
    assert manifest.parse_errors(b'{"errors": "x"}') == []


def test_manifest_for_push_round_trips():
    cfg = oci_image.Descriptor(oci_image.DOCKER_CONFIG, "sha256:" + "c" * 64, 5)
    layer = oci_image.Descriptor(oci_image.DOCKER_LAYER, "sha256:" + "d" * 64, 7)
    data = manifest.manifest_for_push(cfg, [layer])
    f = manifest.parse(data, oci_image.DOCKER_MANIFEST)
    assert f.document.config.digest == cfg.digest and f.document.layers[0].size == 7


def test_credential_helpers(tmp_path, monkeypatch):
    """credHelpers (per registry) and credsStore (default) run `docker-credential-NAME get`
    with the server on stdin, as docker does; `<token>` as the user means an identity
    token."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, user in (("store", "helper-user"), ("tok", "<token>")):
        script = bin_dir / f"docker-credential-{name}"
        script.write_text("#!/bin/sh\nread server\n"
                          f'echo "{{\\"ServerURL\\": \\"$server\\", \\"Username\\": '
                          f'\\"{user}\\", \\"Secret\\": \\"s-$server\\"}}"\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "store", "credHelpers": {"tok.example": "tok"},
                                "auths": {"plain.example": {
                                    "auth": base64.b64encode(b"p:q").decode()}}}))
    assert auth.load_credentials("reg.example", str(path)) == \
        auth.Credentials("helper-user", "s-reg.example")
    assert auth.load_credentials("tok.example", str(path)) == \
        auth.Credentials("", "", "s-tok.example")
    path.write_text(json.dumps({"credHelpers": {"gone.example": "missing"},
                                "auths": {"gone.example": {
                                    "auth": base64.b64encode(b"p:q").decode()}}}))
    assert auth.load_credentials("gone.example", str(path)) == auth.Credentials("p", "q")
