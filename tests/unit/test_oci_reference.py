import pytest

from skiff.errors import InvalidArgument
from skiff.oci.reference import Reference, is_image_id, parse

HEX = "a" * 64
DIGEST = "sha256:" + HEX


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/user/img:1", "docker.io/user/img:1", "user/img:1"),
    ("user/img", "docker.io/user/img:latest", "user/img:latest"),
    ("docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ("localhost:5000/x:1", "localhost:5000/x:1", "localhost:5000/x:1"),
    ("quay.io/org/team/app:v1.2-rc_3", "quay.io/org/team/app:v1.2-rc_3",
     "quay.io/org/team/app:v1.2-rc_3"),
    ("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a:latest"),
    ("Registry/a", "Registry/a:latest", "Registry/a:latest"),  # upper case => a host
    ("ab/c__d-e---f.g", "docker.io/ab/c__d-e---f.g:latest", "ab/c__d-e---f.g:latest"),
    ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST, "busybox@" + DIGEST),
    ("busybox:1@" + DIGEST, "docker.io/library/busybox:1@" + DIGEST,
     "busybox:1@" + DIGEST),
    ("sha256:" + HEX, "docker.io/library/sha256:" + HEX, "sha256:" + HEX),
])
def test_normalisation(text, full, familiar):
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert parse(full) == ref  # normalisation is idempotent


def test_fields():
    ref = parse("localhost:5000/team/app:2@" + DIGEST)
    assert ref == Reference("localhost:5000", "team/app", "2", DIGEST)
    assert ref.repository == "localhost:5000/team/app"
    assert ref.familiar_name() == "localhost:5000/team/app"
    assert parse("busybox").familiar_name() == "busybox"
    assert parse("busybox").repository == "docker.io/library/busybox"


def test_default_tag_only_without_tag_or_digest():
    assert parse("busybox@" + DIGEST).tag is None
    assert parse("busybox", default_tag=False).tag is None
    assert str(parse("busybox", default_tag=False)) == "docker.io/library/busybox"
    assert parse("busybox:x", default_tag=False).tag == "x"


def test_reference_is_frozen_and_hashable():
    ref = parse("busybox")
    with pytest.raises(AttributeError):
        ref.tag = "x"
    assert {ref: 1}[parse("docker.io/library/busybox:latest")] == 1
    assert ref.with_tag("1").tag == "1"
    assert ref.with_digest(DIGEST).familiar() == "busybox:latest@" + DIGEST


@pytest.mark.parametrize("text", [
    "", ":", ":tag", "@" + DIGEST, "busybox:", "busybox@", "a//b", "/a", "a/", "-a", "a-",
    "a..b", "a/.b", "busybox:-tag", "busybox:.tag", "busybox:ta/g", "busybox:t:g",
    "busybox:" + "x" * 129, "busybox@sha256:abc", "busybox@sha256:" + "g" * 64,
    "busybox@" + HEX, "bad host!/x", "host:port/x", "a b", "busybox\n", "busybox\x00",
    "lo-/x", "[zz]:5/x", "busybox:1@sha256", "émoji", "busybox:tàg",
])
def test_invalid_format(text):
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert str(info.value) == "invalid reference format"


def test_uppercase_path_uses_dockers_message():
    with pytest.raises(InvalidArgument) as info:
        parse("Busybox")
    assert str(info.value) == (
        "invalid reference format: repository name (library/Busybox) must be lowercase")
    with pytest.raises(InvalidArgument, match=r"repository name \(Foo\) must be lowercase"):
        parse("localhost:5000/Foo:tag")
    with pytest.raises(InvalidArgument, match=r"\(user/Img\) must be lowercase"):
        parse("user/Img@" + DIGEST)


def test_length_limits():
    assert parse("a" * (255 - len("docker.io/library/")))
    with pytest.raises(InvalidArgument, match="must not be more than 255 characters"):
        parse("a" * (256 - len("docker.io/library/")))
    with pytest.raises(InvalidArgument):
        parse("x" * 100_000)
    assert parse("busybox:" + "t" * 128).tag == "t" * 128


def test_bad_digests_use_go_digest_wording():
    with pytest.raises(InvalidArgument, match="invalid checksum digest length"):
        parse("busybox@sha256:" + "a" * 40)
    with pytest.raises(InvalidArgument, match="unsupported digest algorithm"):
        parse("busybox@md5:" + "a" * 32)
    with pytest.raises(InvalidArgument, match="invalid checksum digest format"):
        parse("busybox@sha256:" + "A" * 64)
    assert parse("busybox@sha512:" + "b" * 128).digest == "sha512:" + "b" * 128


def test_bare_hex_is_refused_as_a_name():
    with pytest.raises(InvalidArgument, match="cannot specify 64-byte hexadecimal strings"):
        parse(HEX)


def test_non_string_input():
    with pytest.raises(InvalidArgument):
        parse(None)
    with pytest.raises(InvalidArgument):
        parse(b"busybox")


def test_is_image_id():
    assert is_image_id(HEX)
    assert is_image_id(DIGEST)
    assert not is_image_id(HEX[:12])
    assert not is_image_id("sha256:" + HEX[:63])
    assert not is_image_id("A" * 64)
    assert not is_image_id("sha512:" + HEX)
    assert not is_image_id(HEX + "\n")
    assert not is_image_id(None)
