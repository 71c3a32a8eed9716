"""The Engine API's error body (`{"message": "..."}`) and the wire's own protocol error."""

import skiff.wire.jsonfast as jsonfast
from skiff.errors import SkiffError


class ProtocolError(SkiffError):
    """Bytes that break a wire format. `remote` says who broke it: True when the bytes came
    from the peer (the usual case for a decoder), False when our own side asked for
    something the format cannot express. Status 400: as a server, a peer's malformed
    request is a bad request; a client turns it into its own error instead."""

    status = 400

    def __init__(self, message: str, remote: bool = True):
        super().__init__(message)
        self.remote = remote


def error_body(message: str) -> bytes:
    """What dockerd sends with a 4xx/5xx status: one JSON object and a newline."""
    return jsonfast.dumps({"message": message}, ascii=False).encode() + b"\n"


def parse_error_body(body: bytes | str) -> str:
    """The message of an error response, as the docker client reads it: the `message`
    field when the body is Docker's JSON, else the body's text itself."""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        doc = jsonfast.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(doc, dict):
        for key in ("message", "error"):
            if isinstance(doc.get(key), str):
                return doc[key]
    return text.strip()
