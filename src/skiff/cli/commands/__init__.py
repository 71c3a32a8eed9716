"""One module per family of commands; each handler is `cmd_NAME(cli, opts, args) -> int`.

This package's `__init__` stays light: it is imported on every command, for the flag
validators and for `describe_error`, the one place foreign errors become docker's messages.
"""

from __future__ import annotations


def validators(command_name: str) -> dict:
    if command_name in ("run", "create") or command_name.endswith((" run", " create")):
        from skiff.cli.config import parse_memory, validate_env

        def memory(value: str) -> str:
            parse_memory(value)
            return value

        return {"env": validate_env, "memory": memory}
    return {}


def describe_error(exc: BaseException) -> tuple[str | None, int]:
    """(message, exit status) for an error a command let through; (None, 0) for a bug."""
    from skiff.errors import SkiffError

    if isinstance(exc, SkiffError):
        explanation = getattr(exc, "explanation", None)
        return (explanation() if callable(explanation) else exc.message), 1
    if isinstance(exc, OSError):
        return os_error_text(exc), 1
    return None, 0


def os_error_text(exc: OSError) -> str:
    """Go's wording for a failed file operation: `open x.tar: no such file or directory`."""
    reason = (exc.strerror or str(exc)).lower()
    if exc.filename:
        return f"open {exc.filename}: {reason}"
    return reason
