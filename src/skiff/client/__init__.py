"""Docker Engine API client: the one way cli/, compose/, web/ and the tests talk to a daemon.

Owns: the connection to a daemon (`unix://` socket or `tcp://`), API version negotiation
(`/_ping`), request/response handling with Docker's error body, streaming responses (JSON
progress messages, the multiplexed stdout/stderr framing) and the hijacked connection used by
attach and exec.

Must not import: engine/, api/ or anything below them. Only the standard library, wire/, oci/
and skiff.errors. Imports are lazy: `import skiff.client` costs nothing until a name is used,
because the CLI's start-up time counts.

Public surface (pinned by tests/unit/test_client.py):
    Client, Response, HijackedStream, APIError, DaemonUnreachable, ProtocolError, ClientError,
    DEFAULT_HOST
"""

DEFAULT_HOST = "unix:///run/skiff/skiff.sock"

_EXPORTS = {
    "Client": "skiff.client.client",
    "Response": "skiff.client.client",
    "PendingResponse": "skiff.client.client",
    "HijackedStream": "skiff.client.streams",
    "ClientError": "skiff.client.errors",
    "APIError": "skiff.client.errors",
    "DaemonUnreachable": "skiff.client.errors",
    "ProtocolError": "skiff.client.errors",
}

__all__ = ["DEFAULT_HOST", *_EXPORTS]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skiff.client' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
