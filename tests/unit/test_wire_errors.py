import json

import pytest

from skiff.errors import SkiffError
from skiff.wire.errors import ProtocolError, error_body, parse_error_body


def test_error_body():
    body = error_body("No such container: web")
    assert body == b'{"message": "No such container: web"}\n'
    assert json.loads(body) == {"message": "No such container: web"}
    assert json.loads(error_body('quote " and é'))["message"] == 'quote " and é'


@pytest.mark.parametrize("body, message", [
    (b'{"message": "No such image: busybox:latest"}\n', "No such image: busybox:latest"),
    ('{"message": "x"}', "x"),
    (b'{"error": "registry said no"}', "registry said no"),
    (b"page not found\n", "page not found"),
    (b"", ""),
    (b"[1]", "[1]"),
    (b'{"message": 5}', '{"message": 5}'),
    (b"\xff\xfe broken", "\ufffd\ufffd broken"),
])
def test_parse_error_body(body, message):
    assert parse_error_body(body) == message


def test_round_trip():
    for text in ("", "Conflict. The container name \"/web\" is already in use", "a\nb"):
        assert parse_error_body(error_body(text)) == text


def test_protocol_error():
    error = ProtocolError("bad")
    assert isinstance(error, SkiffError) and error.remote and error.status == 400
    assert ProtocolError("ours", remote=False).remote is False
    assert error.message == "bad"
