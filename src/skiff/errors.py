"""One exception class per kind of failure, mapped to HTTP status codes once, at the API edge.

Messages copy Docker's wording, because clients (docker-py, the docker CLI) tell errors apart by
their text as well as by their status code.
"""


class SkiffError(Exception):
    """Base of every error skiff raises on purpose; `status` is the HTTP status the API uses."""

    status = 500

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidArgument(SkiffError):
    status = 400


class NotFound(SkiffError):
    status = 404


class Conflict(SkiffError):
    status = 409


class NotModified(SkiffError):
    """The object is already in the requested state (docker answers 304)."""

    status = 304


class RuntimeFailure(SkiffError):
    """The OCI runtime could not create or start a container.

    `exit_code` is what `docker run` exits with for this failure: 126 when the command cannot
    be invoked, 127 when it is not found, 125 for any other failure of the engine itself.
    """

    status = 500

    def __init__(self, message: str, exit_code: int = 125):
        super().__init__(message)
        self.exit_code = exit_code


class Unsupported(SkiffError):
    """A feature that this object's configuration does not offer (docker answers 501)."""

    status = 501


class Unavailable(SkiffError):
    status = 503


class Forbidden(SkiffError):
    """Docker's errdefs.Forbidden: the request is understood and refused as it stands
    (an overlapping subnet, a network in use)."""

    status = 403
