"""What can go wrong talking to a daemon, told apart by who broke: the daemon said no
(`APIError`), it could not be reached (`DaemonUnreachable`), or it answered something that is
not the Engine API (`ProtocolError`)."""

from skiff.errors import SkiffError


class ClientError(SkiffError):
    """Base of the client's errors."""


class APIError(ClientError):
    """The daemon answered with a non-2xx status; `message` is the `{"message": ...}` body.

    `str(err)` is the bare message; `err.explanation()` is Docker's
    `Error response from daemon: ...` wording.
    """

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

    def explanation(self) -> str:
        return f"Error response from daemon: {self.message}"

    @property
    def not_found(self) -> bool:
        return self.status == 404

    def __repr__(self) -> str:
        return f"APIError({self.status}, {self.message!r})"


class DaemonUnreachable(ClientError, ConnectionError):
    """No daemon listens at the host: the socket is absent, refuses, or is not ours to use."""

    status = 503

    def __init__(self, message: str, host: str = ""):
        super().__init__(message)
        self.host = host


class ProtocolError(ClientError):
    """The remote side sent something that is not a valid answer (bad HTTP, bad framing,
    a connection dropped mid-response)."""

    status = 502
