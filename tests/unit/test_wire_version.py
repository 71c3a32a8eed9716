import pytest

from skiff.errors import InvalidArgument
from skiff.wire.version import (
    API_VERSION, MIN_API_VERSION, check_request_version, compare_versions, negotiate,
    parse_version, split_version_prefix,
)


def test_constants():
    assert API_VERSION == "1.47" and MIN_API_VERSION == "1.24"
    assert compare_versions(API_VERSION, "1.44") >= 0  # docker 29 CLIs need >= 1.44


@pytest.mark.parametrize("text, parsed", [
    ("1.41", (1, 41)), ("1.24", (1, 24)), ("1", (1, 0)), ("2.0", (2, 0)),
    ("1.41.2", (1, 41, 2)), ("01.09", (1, 9)),
])
def test_parse_version(text, parsed):
    assert parse_version(text) == parsed


@pytest.mark.parametrize("text", [
    "", "v1.41", "1.", ".1", "1..2", "1.x", "latest", " 1.41", "1.41\n", "1,41", "-1.2",
    None, 1.41, "1" * 40, "１.４１",
])
def test_parse_version_rejects(text):
    with pytest.raises(InvalidArgument):
        parse_version(text)


@pytest.mark.parametrize("a, b, result", [
    ("1.41", "1.41", 0), ("1.9", "1.24", -1), ("1.100", "1.99", 1), ("2.0", "1.99", 1),
    ("1", "1.0", 0), ("1.41.1", "1.41", 1), ("1.41", "1.41.0", 0),
])
def test_compare_versions(a, b, result):
    assert compare_versions(a, b) == result
    assert compare_versions(b, a) == -result


def test_check_request_version():
    assert check_request_version(None) == API_VERSION
    assert check_request_version("") == API_VERSION
    assert check_request_version("1.24") == "1.24"
    assert check_request_version("1.45") == "1.45"
    assert check_request_version(API_VERSION) == API_VERSION


def test_too_old_and_too_new_use_dockers_text():
    with pytest.raises(InvalidArgument) as info:
        check_request_version("1.12")
    assert str(info.value) == (
        "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version")
    with pytest.raises(InvalidArgument) as info:
        check_request_version("1.99")
    assert str(info.value) == (
        "client version 1.99 is too new. Maximum supported API version is 1.47")
    with pytest.raises(InvalidArgument, match="too new"):
        check_request_version("2.0")
    with pytest.raises(InvalidArgument, match="too old"):
        check_request_version("1.9")  # numeric, not string, comparison


@pytest.mark.parametrize("path, expected", [
    ("/v1.45/containers/json", ("1.45", "/containers/json")),
    ("/v1.24/_ping", ("1.24", "/_ping")),
    ("/v1.45", ("1.45", "/")),
    ("/v1.45/", ("1.45", "/")),
    ("/v1/info", ("1", "/info")),
    ("/containers/json", (None, "/containers/json")),
    ("/version", (None, "/version")),
    ("/v", (None, "/v")),
    ("/v1.45x/info", (None, "/v1.45x/info")),
    ("/vx/info", (None, "/vx/info")),
    ("v1.45/info", (None, "v1.45/info")),
    ("/", (None, "/")),
    ("", (None, "")),
])
def test_split_version_prefix(path, expected):
    assert split_version_prefix(path) == expected


def test_negotiate():
    assert negotiate("1.47", "1.41") == "1.41"
    assert negotiate("1.41", "1.47") == "1.41"
    assert negotiate("1.45", "1.45") == "1.45"
    assert negotiate("1.47", None) == "1.47"
    assert negotiate("1.47", "1.100") == "1.47"
