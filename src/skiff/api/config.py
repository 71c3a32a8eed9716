"""skiffd's configuration: a daemon.json in docker's format, then command-line flags.

Keys understood: data-root, exec-root, hosts, cgroup-parent, log-driver, log-opts, debug,
default-runtime, runtimes, userns-remap,
live-restore (default true: containers keep running while skiffd stops or restarts; false
stops them, as dockerd does by default), shutdown-timeout. Unknown keys
are refused, as dockerd refuses them, so that a typo does not pass silently.
"""

from __future__ import annotations

import json
import os

KNOWN = {"data-root", "exec-root", "hosts", "cgroup-parent", "log-driver", "log-opts", "debug",
         "live-restore", "pidfile"}
DEFAULT_PATH = "/etc/skiff/daemon.json"
KNOWN |= {"shutdown-timeout"}
# the default bridge network and address pools (network/): bridge, bip, iptables and
# default-address-pools as [{"base": "10.90.0.0/16", "size": 24}, ...]
KNOWN |= {"bridge", "bip", "iptables", "default-address-pools"}
# TCP listeners (api/tls.py): --tls, --tlsverify, --tlscacert, --tlscert, --tlskey.
TLS_KEYS = ("tls", "tlsverify", "tlscacert", "tlscert", "tlskey")
KNOWN |= set(TLS_KEYS)
KNOWN |= {"default-runtime", "runtimes", "userns-remap"}   # runtimes, user namespaces
# registries (api/registry_config.py): insecure-registries, registry-mirrors, max-concurrent-*
KNOWN |= {"insecure-registries", "registry-mirrors", "max-concurrent-downloads",
          "max-concurrent-uploads"}


class ConfigError(Exception):
    pass


def load(path: str | None) -> dict:
    """The file's settings; {} when the default file does not exist."""
    if path is None:
        path = DEFAULT_PATH
        if not os.path.exists(path):
            return {}
    try:
        with open(path) as f:
            settings = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"unable to configure the daemon: open {path}: no such file") from None
    except ValueError as exc:
        raise ConfigError(f"unable to configure the daemon: {path}: invalid JSON: {exc}") \
            from None
    if not isinstance(settings, dict):
        raise ConfigError(f"unable to configure the daemon: {path}: not a JSON object")
    unknown = sorted(set(settings) - KNOWN)
    if unknown:
        raise ConfigError("the following directives don't match any configuration option: "
                          + ", ".join(unknown))
    if "log-opts" in settings and not isinstance(settings["log-opts"], dict):
        raise ConfigError("log-opts must be an object of strings")
    hosts = settings.get("hosts")
    if hosts is not None and (not isinstance(hosts, list) or not hosts or
                              not all(isinstance(h, str) for h in hosts)):
        raise ConfigError("hosts must be a list of addresses (unix://PATH, tcp://ADDR:PORT, "
                          "fd://)")
    return settings


def merge(args, settings: dict, defaults: dict) -> None:
    """Fill each flag the user did not give from the file. `defaults` maps flag attribute
    names to their parser defaults, to tell an explicit flag from an absent one."""
    mapping = {"root": "data-root", "exec_root": "exec-root", "cgroup_parent": "cgroup-parent",
               "log_driver": "log-driver", "debug": "debug", "pidfile": "pidfile",
               "live_restore": "live-restore", "shutdown_timeout": "shutdown-timeout"}
    for attr, key in mapping.items():
        if key in settings and getattr(args, attr) == defaults.get(attr):
            setattr(args, attr, settings[key])
    if "hosts" in settings and not args.host:
        args.host = list(settings["hosts"])
    for key in TLS_KEYS:
        if key in settings and getattr(args, key, None) in (None, False):
            setattr(args, key, settings[key])
    args.log_opts = {str(k): str(v) for k, v in (settings.get("log-opts") or {}).items()}
    for text in getattr(args, "log_opt", None) or []:   # --log-opt wins over the file
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"invalid --log-opt {text!r}: expected KEY=VALUE")
        args.log_opts[key] = value
    merge_network(args, settings, defaults)
    from skiff.api import registry_config
    try:
        registry_config.merge(args, settings)
    except registry_config.RegistryConfigError as exc:
        raise ConfigError(str(exc)) from None
    merge_runtimes(args, settings, defaults)


def merge_runtimes(args, settings: dict, defaults: dict) -> None:
    """args.runtimes: daemon.json's "runtimes" plus each --add-runtime NAME=PATH;
    args.default_runtime: the flag, else "default-runtime"."""
    from skiff.engine.runtimes import parse_add_runtime

    runtimes = settings.get("runtimes") or {}
    if not isinstance(runtimes, dict):
        raise ConfigError("runtimes must be an object of {\"path\": ..., \"runtimeArgs\": [...]}")
    runtimes = dict(runtimes)
    for text in getattr(args, "add_runtime", None) or []:
        try:
            name, path = parse_add_runtime(text)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if name in runtimes:
            raise ConfigError(f"runtime {name} is defined both by --add-runtime and in the "
                              "configuration file")
        runtimes[name] = {"path": path}
    args.runtimes = runtimes
    if "default-runtime" in settings and \
            getattr(args, "default_runtime", None) == defaults.get("default_runtime"):
        args.default_runtime = settings["default-runtime"]
    if settings.get("userns-remap") and not getattr(args, "userns_remap", ""):
        args.userns_remap = str(settings["userns-remap"])


def merge_network(args, settings: dict, defaults: dict) -> None:
    """bridge, bip, iptables and default-address-pools, where the flags left them."""
    for attr, key in (("bridge", "bridge"), ("bip", "bip"), ("iptables", "iptables")):
        if key in settings and getattr(args, attr, None) == defaults.get(attr):
            setattr(args, attr, settings[key])
    pools = settings.get("default-address-pools")
    if pools is None or getattr(args, "default_address_pool", None):
        return
    if not isinstance(pools, list) or not all(
            isinstance(p, dict) and isinstance(p.get("base"), str) and
            isinstance(p.get("size"), int) for p in pools):
        raise ConfigError('default-address-pools must be a list of {"base": "CIDR", '
                          '"size": N}')
    args.default_address_pool = [f"base={p['base']},size={p['size']}" for p in pools]
