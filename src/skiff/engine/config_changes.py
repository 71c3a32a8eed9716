"""`--change` for commit and import: Dockerfile instructions applied to an image's config.

    apply_changes({"Cmd": ["sh"]}, ['CMD ["top"]', "ENV A=1 B=2", "EXPOSE 80 53/udp"])
    -> {"Cmd": ["top"], "Env": ["A=1", "B=2"], "ExposedPorts": {"80/tcp": {}, "53/udp": {}}}

Allowed, as docker allows them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL,
USER, VOLUME, WORKDIR. CMD and ENTRYPOINT take the JSON (exec) form or the shell form
(`/bin/sh -c "..."`). Pure: text in, a new config dict out.
"""

from __future__ import annotations

import json
import posixpath
import shlex

from skiff.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


def _json_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _json_or_words(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return text.split()


def _pairs(instruction: str, rest: str) -> list[tuple[str, str]]:
    """`K=V K2="V 2"` or the legacy `K V with spaces`."""
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise InvalidArgument(f"{instruction}: {e}") from None
    if not words:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    if "=" not in words[0]:
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise InvalidArgument(f"{instruction} names can not be blank" if not key else
                                  f"{instruction} must have two arguments")
        return [(key, value.strip())]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise InvalidArgument(f"Syntax error - can't find = in \"{word}\". Must be of the "
                                  f"form: name=value")
        if not key:
            raise InvalidArgument(f"{instruction} names can not be blank")
        out.append((key, value))
    return out


def _port(text: str) -> str:
    port, _, proto = text.partition("/")
    proto = proto.lower() or "tcp"
    lo, _, hi = port.partition("-")
    if not lo.isdigit() or (hi and not hi.isdigit()) or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid containerPort: {text}" if proto in
                              ("tcp", "udp", "sctp") else f"invalid proto: {proto}")
    return f"{port}/{proto}"


def apply_changes(config: dict, changes: list[str]) -> dict:
    """A copy of the image config's `config` object with `changes` applied in order."""
    out = json.loads(json.dumps(config or {}))
    for line in changes:
        line = line.strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        instruction = word.upper()
        if instruction not in ALLOWED:
            raise InvalidArgument(f"{word} is not a valid change command")
        if instruction == "CMD":
            out["Cmd"] = _json_or_shell(rest)
        elif instruction == "ENTRYPOINT":
            out["Entrypoint"] = _json_or_shell(rest)
            if "Cmd" in out:
                out["Cmd"] = None  # as docker's builder does
        elif instruction == "ENV":
            env = list(out.get("Env") or [])
            for key, value in _pairs("ENV", rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            out["Env"] = env
        elif instruction == "LABEL":
            labels = dict(out.get("Labels") or {})
            labels.update(_pairs("LABEL", rest))
            out["Labels"] = labels
        elif instruction == "EXPOSE":
            ports = dict(out.get("ExposedPorts") or {})
            words = rest.split()
            if not words:
                raise InvalidArgument("EXPOSE requires at least one argument")
            for p in words:
                ports[_port(p)] = {}
            out["ExposedPorts"] = ports
        elif instruction == "VOLUME":
            volumes = dict(out.get("Volumes") or {})
            paths = _json_or_words(rest)
            if not paths:
                raise InvalidArgument("VOLUME requires at least one argument")
            for p in paths:
                volumes[p] = {}
            out["Volumes"] = volumes
        elif instruction == "USER":
            if not rest.strip():
                raise InvalidArgument("USER requires exactly one argument")
            out["User"] = rest.strip()
        elif instruction == "WORKDIR":
            if not rest.strip():
                raise InvalidArgument("WORKDIR requires exactly one argument")
            out["WorkingDir"] = posixpath.normpath(posixpath.join(
                out.get("WorkingDir") or "/", rest.strip()))
        elif instruction == "STOPSIGNAL":
            if not rest.strip():
                raise InvalidArgument("STOPSIGNAL requires exactly one argument")
            out["StopSignal"] = rest.strip()
        elif instruction == "ONBUILD":
            out["OnBuild"] = list(out.get("OnBuild") or []) + [rest.strip()]
    return out
