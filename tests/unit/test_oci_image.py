import hashlib
import json

import pytest

from skiff.errors import InvalidArgument
from skiff.oci import image
from skiff.oci.image import (
    Descriptor, ImageConfig, Index, Manifest, Platform, chain_ids, layer_compression,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": image.DOCKER_MANIFEST,
    "config": {"mediaType": image.DOCKER_CONFIG, "size": 1457, "digest": D1},
    "layers": [{"mediaType": image.DOCKER_LAYER_GZIP, "size": 2152262, "digest": D2}],
}

MANIFEST_LIST = {
    "schemaVersion": 2,
    "mediaType": image.DOCKER_MANIFEST_LIST,
    "manifests": [
        {"mediaType": image.DOCKER_MANIFEST, "digest": D1, "size": 528,
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": image.DOCKER_MANIFEST, "digest": D2, "size": 528,
         "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        {"mediaType": image.DOCKER_MANIFEST, "digest": D3, "size": 528,
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
    ],
}

CONFIG = {
    "architecture": "amd64",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["sh"], "Labels": {"a": "b"}, "ArgsEscaped": True,
               "OnBuild": None},
    "created": "2023-07-18T23:19:33.655005962Z",
    "history": [{"created": "2023-07-18T23:19:33Z", "created_by": "ADD file:x in / "},
                {"created": "2023-07-18T23:19:33Z", "created_by": "CMD [\"sh\"]",
                 "empty_layer": True}],
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": [D2, D3]},
    "container": "abc",
    "docker_version": "20.10.23",
}


def test_docker_manifest():
    manifest = Manifest.from_json(json.dumps(DOCKER_MANIFEST).encode())
    assert manifest.media_type == image.DOCKER_MANIFEST
    assert manifest.config.digest == D1 and manifest.config.size == 1457
    assert [layer.digest for layer in manifest.layers] == [D2]
    assert json.loads(manifest.to_json()) == DOCKER_MANIFEST


def test_manifest_accepts_str_and_dict_and_keeps_unknown_fields():
    doc = dict(DOCKER_MANIFEST, future={"x": 1})
    doc["layers"] = [dict(DOCKER_MANIFEST["layers"][0], urls=["https://x"], extra=7)]
    for data in (json.dumps(doc), doc):
        assert json.loads(Manifest.from_json(data).to_json()) == doc
    assert "future" in doc  # the caller's dict is not consumed


def test_oci_manifest_without_media_type_and_with_subject():
    doc = {"schemaVersion": 2,
           "config": {"mediaType": image.OCI_EMPTY, "digest": D1, "size": 2},
           "layers": [], "artifactType": "application/x-sig",
           "subject": {"mediaType": image.OCI_MANIFEST, "digest": D2, "size": 10},
           "annotations": {"k": "v"}}
    manifest = Manifest.from_json(doc)
    assert manifest.media_type is None and manifest.subject.digest == D2
    assert json.loads(manifest.to_json()) == doc


def test_new_manifest_to_json():
    manifest = Manifest(Descriptor(image.OCI_CONFIG, D1, 3), [Descriptor(image.OCI_LAYER, D2, 4)])
    assert json.loads(manifest.to_json()) == {
        "schemaVersion": 2, "mediaType": image.OCI_MANIFEST,
        "config": {"mediaType": image.OCI_CONFIG, "digest": D1, "size": 3},
        "layers": [{"mediaType": image.OCI_LAYER, "digest": D2, "size": 4}]}
    assert b" " not in manifest.to_json()  # compact


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b"null", b"\xff\xfe", "{}", {"schemaVersion": 1},
    {"schemaVersion": "2"}, {"schemaVersion": True},
    dict(DOCKER_MANIFEST, config=None),
    dict(DOCKER_MANIFEST, config="x"),
    dict(DOCKER_MANIFEST, layers={}),
    dict(DOCKER_MANIFEST, layers=["x"]),
    dict(DOCKER_MANIFEST, mediaType=image.OCI_INDEX),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": "sha256:bad", "size": 1}),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": D1}),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": D1, "size": -1}),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": D1, "size": "1"}),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": D1, "size": True}),
    dict(DOCKER_MANIFEST, config={"mediaType": "x", "digest": D1, "size": 1.5}),
    dict(DOCKER_MANIFEST, config={"mediaType": 5, "digest": D1, "size": 1}),
])
def test_bad_manifests(data):
    with pytest.raises(InvalidArgument):
        Manifest.from_json(data)


def test_index_and_platform_selection():
    index = Index.from_json(json.dumps(MANIFEST_LIST))
    assert json.loads(index.to_json()) == MANIFEST_LIST
    assert [d.digest for d in index.find(Platform.parse("linux/amd64"))] == [D1]
    assert [d.digest for d in index.find(Platform.parse("linux/arm/v7"))] == [D2]
    assert [d.digest for d in index.find(Platform.parse("linux/arm64"))] == [D3]
    assert index.find(Platform.parse("linux/arm/v6")) == []
    assert index.find(Platform("windows", "amd64")) == []


def test_index_rejects():
    with pytest.raises(InvalidArgument):
        Index.from_json(dict(MANIFEST_LIST, mediaType=image.DOCKER_MANIFEST))
    with pytest.raises(InvalidArgument):
        Index.from_json(dict(MANIFEST_LIST, manifests=[{"digest": D1, "size": 1,
                                                        "platform": "linux"}]))
    with pytest.raises(InvalidArgument):
        Index.from_json(dict(MANIFEST_LIST, schemaVersion=3))


def test_platform():
    platform = Platform.from_dict({"os": "windows", "architecture": "amd64",
                                   "os.version": "10.0.17763.1", "os.features": ["win32k"]})
    assert platform.os_version == "10.0.17763.1"
    assert platform.to_dict()["os.features"] == ["win32k"]
    for bad in ("linux", "linux/", "/amd64", "a/b/c/d", None):
        with pytest.raises(InvalidArgument):
            Platform.parse(bad)


def test_image_config_round_trip():
    config = ImageConfig.from_json(json.dumps(CONFIG))
    assert config.architecture == "amd64" and config.os == "linux"
    assert config.diff_ids == [D2, D3]
    assert config.cmd == ["sh"] and config.entrypoint == [] and config.working_dir == ""
    assert config.env[0].startswith("PATH=") and config.labels == {"a": "b"}
    assert config.user == ""
    assert config.extra == {"container": "abc", "docker_version": "20.10.23"}
    assert json.loads(config.to_json()) == CONFIG
    assert config.chain_ids == chain_ids([D2, D3])


def test_minimal_and_null_config():
    config = ImageConfig.from_json(b'{"architecture":"arm64","os":"linux","config":null,'
                                   b'"rootfs":{"type":"layers","diff_ids":null}}')
    assert config.config == {} and config.diff_ids == [] and config.cmd == []
    doc = json.loads(ImageConfig(architecture="amd64", os="linux").to_json())
    assert doc == {"architecture": "amd64", "os": "linux", "config": {},
                   "rootfs": {"type": "layers", "diff_ids": []}}


@pytest.mark.parametrize("doc", [
    dict(CONFIG, rootfs={"type": "windows", "diff_ids": []}),
    dict(CONFIG, rootfs={"type": "layers", "diff_ids": "x"}),
    dict(CONFIG, rootfs={"type": "layers", "diff_ids": ["sha256:short"]}),
    dict(CONFIG, rootfs={"type": "layers", "diff_ids": [5]}),
    dict(CONFIG, history=["x"]),
    dict(CONFIG, config=["x"]),
    dict(CONFIG, architecture=5),
])
def test_bad_configs(doc):
    with pytest.raises(InvalidArgument):
        ImageConfig.from_json(doc)


def test_layer_compression():
    assert layer_compression(image.OCI_LAYER) is None
    assert layer_compression(image.DOCKER_LAYER) is None
    assert layer_compression(image.OCI_LAYER_GZIP) == "gzip"
    assert layer_compression(image.DOCKER_LAYER_GZIP) == "gzip"
    assert layer_compression(image.DOCKER_FOREIGN_LAYER_GZIP) == "gzip"
    assert layer_compression(image.OCI_LAYER_ZSTD) == "zstd"
    assert layer_compression(image.OCI_LAYER_NONDIST_ZSTD) == "zstd"
    for bad in (image.OCI_CONFIG, "application/x-tar", "", None):
        with pytest.raises(InvalidArgument):
            layer_compression(bad)
    assert image.is_layer_media_type(image.OCI_LAYER_GZIP)
    assert not image.is_layer_media_type(image.DOCKER_MANIFEST)


def test_chain_ids():
    assert chain_ids([]) == []
    assert chain_ids([D1]) == [D1]
    second = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {D3}".encode()).hexdigest()
    assert chain_ids([D1, D2, D3]) == [D1, second, third]
    # A shared prefix yields shared chain ids; order matters.
    assert chain_ids([D1, D2])[1] == second
    assert chain_ids([D2, D1])[1] != second
    with pytest.raises(InvalidArgument):
        chain_ids([D1, "nope"])
