"""Content digests (`sha256:<hex>`) as go-digest defines them, and streaming verification.

Digests are always computed over exact bytes; nothing here re-serialises anything.
"""

import re

from skiff.errors import InvalidArgument

# Hex length of each algorithm go-digest registers; anything else is "unsupported".
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}

# go-digest's general grammar: lets us tell "unsupported algorithm" from "garbage".
_DIGEST_GRAMMAR = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+\Z")
_LOWER_HEX = re.compile(r"[a-f0-9]+\Z")

# go-digest's error texts, which docker prints unchanged.
ERR_FORMAT = "invalid checksum digest format"
ERR_LENGTH = "invalid checksum digest length"
ERR_UNSUPPORTED = "unsupported digest algorithm"


def sha256_hex(data: bytes) -> str:
    import hashlib  # lazily: loading OpenSSL costs the CLI milliseconds it rarely needs

    return hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """`sha256:<hex>` of `data` (or another supported algorithm)."""
    if algorithm not in _HEX_LENGTH:
        raise InvalidArgument(ERR_UNSUPPORTED)
    import hashlib

    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def parse_digest(text: str) -> tuple[str, str]:
    """Split and validate `alg:hex`; raises InvalidArgument with go-digest's wording."""
    if not isinstance(text, str):
        raise InvalidArgument(ERR_FORMAT)
    algorithm, sep, encoded = text.partition(":")
    if not sep or not algorithm or not encoded:
        raise InvalidArgument(ERR_FORMAT)
    expected_length = _HEX_LENGTH.get(algorithm)
    if expected_length is None:
        if not _DIGEST_GRAMMAR.match(text):
            raise InvalidArgument(ERR_FORMAT)
        raise InvalidArgument(ERR_UNSUPPORTED)
    if len(encoded) != expected_length:
        raise InvalidArgument(ERR_LENGTH)
    if not _LOWER_HEX.match(encoded):
        raise InvalidArgument(ERR_FORMAT)
    return algorithm, encoded


def is_digest(text: str) -> bool:
    try:
        parse_digest(text)
    except InvalidArgument:
        return False
    return True


class DigestVerifier:
    """Hash a blob as it streams past and check it against the expected digest and size.

    Pure: it hashes only what `update` is given. A size overrun is reported as soon as it
    happens, so a hostile peer cannot make the caller buffer or store more than announced.
    """

    def __init__(self, expected_digest: str, expected_size: int | None = None):
        self.algorithm, self._expected_hex = parse_digest(expected_digest)
        self.expected_digest = expected_digest
        if expected_size is not None and expected_size < 0:
            raise InvalidArgument(f"invalid size {expected_size} for {expected_digest}")
        self.expected_size = expected_size
        self.size = 0
        import hashlib

        self._hash = hashlib.new(self.algorithm)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.expected_size is not None and self.size > self.expected_size:
            raise InvalidArgument(
                f"size mismatch for {self.expected_digest}: expected {self.expected_size} "
                f"bytes, got more than that"
            )
        self._hash.update(chunk)

    @property
    def digest(self) -> str:
        """Digest of the bytes seen so far."""
        return f"{self.algorithm}:{self._hash.hexdigest()}"

    def verify(self) -> str:
        """Raise InvalidArgument unless size and digest match; return the digest."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise InvalidArgument(
                f"size mismatch for {self.expected_digest}: expected {self.expected_size} "
                f"bytes, got {self.size}"
            )
        actual = self.digest
        if actual != self.expected_digest:
            raise InvalidArgument(
                f"digest mismatch: expected {self.expected_digest}, got {actual}"
            )
        return actual
