"""`push`, `login`, `logout`: credentials kept as the docker CLI keeps them, in a config.json
(`auths` -> `{"auth": base64("user:password")}`, mode 0600) under $DOCKER_CONFIG or ~/.skiff,
and sent to the daemon in the `X-Registry-Auth` header (base64url JSON), as docker sends them."""

from __future__ import annotations

import base64
import json
import os

from skiff.cli.context import StatusError

HUB_KEY = "https://index.docker.io/v1/"
HUB_DOMAINS = ("docker.io", "index.docker.io", "registry-1.docker.io")


def config_path() -> str:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                ".skiff")
    return os.path.join(directory, "config.json")


def _read(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except ValueError:
        raise StatusError(1, f"{path}: invalid JSON") from None
    return doc if isinstance(doc, dict) else {}


def _write(path: str, doc: dict) -> None:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent="\t")
        f.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def server_key(server: str | None) -> str:
    """The `auths` key: docker's Hub URL, or `host[:port]` as typed (scheme and path cut)."""
    if not server:
        return HUB_KEY
    text = server
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/")[0]
    return HUB_KEY if text in HUB_DOMAINS else text


def _from_helper(helper: str, key: str) -> tuple[str, str] | None:
    """`docker-credential-HELPER get`, as the docker CLI runs it (a token comes back with the
    user name `<token>` and is sent as an identity token)."""
    import subprocess

    try:
        out = subprocess.run([f"docker-credential-{helper}", "get"], input=key.encode(),
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not doc.get("Secret"):
        return None
    return str(doc.get("Username") or ""), str(doc["Secret"])


def stored(key: str) -> tuple[str, str] | None:
    doc = _read(config_path())
    helper = (doc.get("credHelpers") or {}).get(key) or doc.get("credsStore")
    if helper:
        found = _from_helper(helper, key)
        if found:
            return found
    entry = (doc.get("auths") or {}).get(key)
    if isinstance(entry, dict) and entry.get("identitytoken") and not entry.get("auth"):
        return "<token>", str(entry["identitytoken"])
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def auth_header(key: str) -> dict:
    creds = stored(key)
    if not creds:
        return {}
    if creds[0] == "<token>":
        doc = {"identitytoken": creds[1], "serveraddress": key}
    else:
        doc = {"username": creds[0], "password": creds[1], "serveraddress": key}
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()}


def _domain_of(name: str) -> str:
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def cmd_push(cli, opts, args) -> int:
    from skiff.cli.progress import ProgressRenderer

    name = args[0]
    if "@" in name:
        raise StatusError(1, "cannot push a digest reference")
    repo, tag = name, ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = name.rpartition(":")
    if not tag and not opts.all_tags:
        cli.out("Using default tag: latest")
        tag = "latest"
    params = {"tag": tag} if tag else {}
    headers = auth_header(server_key(_domain_of(repo)))
    client = cli.client()
    with client.request("POST", f"/images/{repo}/push", params, stream=True,
                        headers=headers) as resp:
        if opts.quiet:
            from skiff.cli.commands.run import _NullWriter
            renderer = ProgressRenderer(_NullWriter(), False)
        else:
            renderer = ProgressRenderer(cli.stdout, cli.isatty(cli.stdout))
        for message in resp.iter_json():
            renderer.feed(message)
    if opts.quiet:
        cli.out(name)
    return 0


def cmd_login(cli, opts, args) -> int:
    server = args[0] if args else None
    key = server_key(server)
    username = opts.username
    password = opts.password
    if opts.password_stdin:
        if opts.password:
            raise StatusError(1, "--password and --password-stdin are mutually exclusive")
        if not username:
            raise StatusError(1, "Must provide --username with --password-stdin")
        password = cli.stdin.read().rstrip("\r\n")
    if not username or not password:
        old = stored(key)
        if old and not username and not password:
            username, password = old
        else:
            if not username:
                cli.out("Username: ", end="")
                cli.stdout.flush()
                username = cli.stdin.readline().strip()
            if not password:
                import getpass
                password = getpass.getpass("Password: ") if cli.isatty(cli.stdin) else \
                    cli.stdin.readline().rstrip("\r\n")
    if not username:
        raise StatusError(1, "Error: Non-null Username Required")
    if not password:
        raise StatusError(1, "Error: Non-null Password Required")
    if opts.password and not opts.password_stdin:
        cli.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    client = cli.client()
    client.post("/auth", json_body={"username": username, "password": password,
                                    "serveraddress": key})
    path = config_path()
    doc = _read(path)
    doc.setdefault("auths", {})[key] = {
        "auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    _write(path, doc)
    cli.err(f"WARNING! Your password will be stored unencrypted in {path}.")
    cli.out("Login Succeeded")
    return 0


def cmd_logout(cli, opts, args) -> int:
    key = server_key(args[0] if args else None)
    path = config_path()
    doc = _read(path)
    shown = args[0] if args else key
    if key not in (doc.get("auths") or {}):
        cli.out(f"Not logged in to {shown}")
        return 0
    cli.out(f"Removing login credentials for {shown}")
    del doc["auths"][key]
    _write(path, doc)
    return 0
