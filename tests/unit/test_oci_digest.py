import hashlib

import pytest

from skiff.errors import InvalidArgument
from skiff.oci.digest import DigestVerifier, digest_of, is_digest, parse_digest, sha256_hex

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sha256():
    assert sha256_hex(b"") == EMPTY_SHA256
    assert digest_of(b"") == "sha256:" + EMPTY_SHA256
    assert digest_of(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()
    with pytest.raises(InvalidArgument):
        digest_of(b"x", "md5")


def test_parse_digest():
    assert parse_digest("sha256:" + EMPTY_SHA256) == ("sha256", EMPTY_SHA256)
    assert parse_digest("sha512:" + "0" * 128) == ("sha512", "0" * 128)
    assert is_digest("sha384:" + "0" * 96)


@pytest.mark.parametrize("text, message", [
    ("", "invalid checksum digest format"),
    ("sha256", "invalid checksum digest format"),
    ("sha256:", "invalid checksum digest format"),
    (":" + EMPTY_SHA256, "invalid checksum digest format"),
    (EMPTY_SHA256, "invalid checksum digest format"),
    ("sha256:" + EMPTY_SHA256[:-1], "invalid checksum digest length"),
    ("sha256:" + EMPTY_SHA256 + "0", "invalid checksum digest length"),
    ("sha256:" + EMPTY_SHA256.upper(), "invalid checksum digest format"),
    ("sha256:" + "z" * 64, "invalid checksum digest format"),
    ("sha256:" + " " * 64, "invalid checksum digest format"),
    ("sha512:" + "0" * 64, "invalid checksum digest length"),
    ("md5:" + "0" * 32, "unsupported digest algorithm"),
    ("Sha256:" + EMPTY_SHA256, "invalid checksum digest format"),
    ("sha256 :" + EMPTY_SHA256, "invalid checksum digest format"),
    ("sha256:" + EMPTY_SHA256 + "\n", "invalid checksum digest length"),
])
def test_parse_digest_rejects(text, message):
    with pytest.raises(InvalidArgument) as info:
        parse_digest(text)
    assert str(info.value) == message
    assert not is_digest(text)


def test_parse_digest_non_string():
    with pytest.raises(InvalidArgument):
        parse_digest(None)
    with pytest.raises(InvalidArgument):
        parse_digest(b"sha256:" + EMPTY_SHA256.encode())


def test_verifier_accepts_streamed_chunks():
    data = b"hello world" * 1000
    verifier = DigestVerifier(digest_of(data), len(data))
    for i in range(0, len(data), 333):
        verifier.update(data[i:i + 333])
    assert verifier.verify() == digest_of(data)
    assert verifier.size == len(data)


def test_verifier_without_size():
    verifier = DigestVerifier("sha256:" + EMPTY_SHA256)
    assert verifier.verify() == "sha256:" + EMPTY_SHA256


def test_verifier_digest_mismatch():
    verifier = DigestVerifier(digest_of(b"good"), 4)
    verifier.update(b"evil")
    with pytest.raises(InvalidArgument) as info:
        verifier.verify()
    assert "digest mismatch" in str(info.value)
    assert digest_of(b"good") in str(info.value) and digest_of(b"evil") in str(info.value)


def test_verifier_short_blob():
    verifier = DigestVerifier(digest_of(b"good"), 4)
    verifier.update(b"goo")
    with pytest.raises(InvalidArgument, match="size mismatch.*expected 4 bytes, got 3"):
        verifier.verify()


def test_verifier_stops_an_overlong_blob_at_once():
    verifier = DigestVerifier(digest_of(b"good"), 4)
    verifier.update(b"go")
    with pytest.raises(InvalidArgument, match="size mismatch"):
        verifier.update(b"od!")


def test_verifier_sha512():
    verifier = DigestVerifier(digest_of(b"abc", "sha512"), 3)
    verifier.update(b"abc")
    verifier.verify()


def test_verifier_rejects_bad_expectations():
    with pytest.raises(InvalidArgument):
        DigestVerifier("sha256:nothex")
    with pytest.raises(InvalidArgument):
        DigestVerifier("sha256:" + EMPTY_SHA256, -1)
