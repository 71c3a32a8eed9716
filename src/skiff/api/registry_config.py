"""skiffd's registry settings, as dockerd takes them: daemon.json keys and command-line flags.

    daemon.json                      flag                          default
    "insecure-registries": [...]     --insecure-registry (repeat)  none (loopback always is)
    "registry-mirrors": [...]        --registry-mirror (repeat)    none (Docker Hub itself)
    "max-concurrent-downloads": N    --max-concurrent-downloads    3
    "max-concurrent-uploads": N      --max-concurrent-uploads      5

As dockerd does, a setting given both as a flag and in the file is refused. The environment
variables of RegistryOptions.from_environment (SKIFF_REGISTRY_ALLOW and friends) are read
first; the file and the flags override them.
"""

from __future__ import annotations

import urllib.parse

KEYS = {"insecure-registries", "registry-mirrors", "max-concurrent-downloads",
        "max-concurrent-uploads"}
_FLAGS = {"insecure-registries": "insecure_registry", "registry-mirrors": "registry_mirror",
          "max-concurrent-downloads": "max_concurrent_downloads",
          "max-concurrent-uploads": "max_concurrent_uploads"}


class RegistryConfigError(Exception):
    pass


def add_flags(parser) -> None:
    parser.add_argument("--insecure-registry", action="append", default=None,
                        metavar="HOST[:PORT]|CIDR",
                        help="a registry reached over plain HTTP or unverified TLS "
                        "(repeatable; loopback always is)")
    parser.add_argument("--registry-mirror", action="append", default=None, metavar="URL",
                        help="a Docker Hub mirror, tried before Docker Hub (repeatable)")
    parser.add_argument("--max-concurrent-downloads", type=int, default=None, metavar="N",
                        help="layers downloaded at once by each pull (default 3)")
    parser.add_argument("--max-concurrent-uploads", type=int, default=None, metavar="N",
                        help="layers uploaded at once by each push (default 5)")


def _mirror(text) -> str:
    if not isinstance(text, str):
        raise RegistryConfigError(f"invalid mirror: {text!r} is not a string")
    url = urllib.parse.urlsplit(text)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise RegistryConfigError(f"invalid mirror: unsupported scheme {url.scheme!r} in "
                                  f"{text!r}: must use either 'https://' or 'http://'")
    if url.path not in ("", "/") or url.query or url.fragment:
        raise RegistryConfigError(f"invalid mirror: path, query, or fragment at end of the "
                                  f"URI {text!r}")
    return text.rstrip("/")


def _count(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RegistryConfigError(f"invalid {key}: {value!r} (a positive integer)")
    return value


def merge(args, settings: dict) -> None:
    """Give args.registry_settings the file's registry keys and the flags, checked."""
    merged: dict = {}
    both = [key for key, attr in _FLAGS.items()
            if key in settings and getattr(args, attr, None) is not None]
    if both:
        raise RegistryConfigError(
            "the following directives are specified both as a flag and in the configuration "
            "file: " + ", ".join(both))
    for key, attr in _FLAGS.items():
        value = getattr(args, attr, None)
        if value is None:
            value = settings.get(key)
        if value is None:
            continue
        if key == "insecure-registries":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RegistryConfigError("insecure-registries must be a list of strings")
            merged[key] = [v.strip() for v in value if v.strip()]
        elif key == "registry-mirrors":
            if not isinstance(value, list):
                raise RegistryConfigError("registry-mirrors must be a list of URLs")
            merged[key] = [_mirror(v) for v in value]
        else:
            merged[key] = _count(key, value)
    args.registry_settings = merged


def options(args, environ):
    """The engine's RegistryOptions: the environment's, then the file's and the flags'."""
    from skiff.engine.pull import RegistryOptions

    out = RegistryOptions.from_environment(environ)
    settings = getattr(args, "registry_settings", None) or {}
    if "insecure-registries" in settings:
        out.insecure = list(dict.fromkeys(out.insecure + settings["insecure-registries"]))
    if "registry-mirrors" in settings:
        out.mirrors = list(settings["registry-mirrors"])
    if "max-concurrent-downloads" in settings:
        out.concurrency = settings["max-concurrent-downloads"]
    if "max-concurrent-uploads" in settings:
        out.upload_concurrency = settings["max-concurrent-uploads"]
    return out


def info(engine) -> dict:
    """`GET /info`'s RegistryConfig, as dockerd fills it from the same settings."""
    import ipaddress

    opts = getattr(engine, "registry_options", None)
    insecure = list(getattr(opts, "insecure", None) or [])
    mirrors = [m.rstrip("/") + "/" for m in (getattr(opts, "mirrors", None) or [])]
    cidrs = ["127.0.0.0/8"]
    indexes = {"docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True,
                             "Official": True}}
    for entry in insecure:
        try:
            network = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            indexes[entry] = {"Name": entry, "Mirrors": [], "Secure": False,
                              "Official": False}
            continue
        if network not in cidrs:
            cidrs.append(network)
    return {"AllowNondistributableArtifactsCIDRs": None,
            "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": indexes, "Mirrors": mirrors}
