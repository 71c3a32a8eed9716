"""ImageService against real files: loads of the busybox image that scripts/make_test_images.py
builds (docker-archive and OCI layout), the legacy docker-archive layout, compressed input,
and corrupt or truncated tarballs, which must leave nothing behind."""

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from skiff.engine.images import ImageService
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.snapshot import Snapshotter
from skiff.store import ContainerRecords, ContentStore, MetadataDB
from skiff.store import failpoint

pytestmark = pytest.mark.root
SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def service(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("unpacking image layers needs root (ownership, device nodes)")
    db = MetadataDB(tmp_path / "skiff.db")
    try:
        yield ImageService(ContentStore(tmp_path), db, Snapshotter(tmp_path))
    finally:
        db.close()


def nothing_stored(svc: ImageService) -> None:
    """No image rows, no snapshot (committed or half-made), no blob, no temp file."""
    for table in ("images", "tags", "image_layers"):
        assert svc.db.query(f"SELECT * FROM {table}") == [], table
    left = [n for n in os.listdir(svc.snapshots.dir) if n not in ("active", "empty")]
    assert left == []
    assert list(svc.store.walk()) == []
    for dirpath, _, files in os.walk(svc.store.blobs_dir):
        assert files == [], dirpath


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


# -- building archives in the tests -----------------------------------------------------------

def tar_of(files: dict, links: dict | None = None) -> bytes:
    """A tarball of `files` (name -> bytes) and symlinks `links` (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def config_for(layers: list[bytes], cmd=("sh",), created="2024-02-02T00:00:00Z") -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "created": created,
                       "config": {"Cmd": list(cmd)},
                       "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]}},
                      sort_keys=True).encode()


def legacy_archive(images: list[tuple[bytes, list[bytes], list[str]]]) -> bytes:
    """docker < 25 `docker save`: <v1id>/layer.tar (a repeated layer is a symlink to the
    first copy), <v1id>/VERSION, <v1id>/json, <config hex>.json, manifest.json, repositories."""
    files, links, manifest, seen = {}, {}, [], {}
    for config, layers, tags in images:
        paths = []
        for i, layer in enumerate(layers):
            v1 = hashlib.sha256(config + bytes([i])).hexdigest()
            if sha(layer) in seen:
                links[f"{v1}/layer.tar"] = f"../{seen[sha(layer)]}/layer.tar"
            else:
                files[f"{v1}/layer.tar"] = layer
                seen[sha(layer)] = v1
            files[f"{v1}/VERSION"] = b"1.0"
            files[f"{v1}/json"] = b'{"id":"%s"}' % v1.encode()
            paths.append(f"{v1}/layer.tar")
        files[f"{sha(config)[7:]}.json"] = config
        manifest.append({"Config": f"{sha(config)[7:]}.json", "RepoTags": tags, "Layers": paths})
    files["manifest.json"] = json.dumps(manifest).encode()
    files["repositories"] = b"{}"
    return tar_of(files, links)


def oci_archive(config: bytes, layers: list[bytes], annotations: dict) -> bytes:
    """An OCI image layout tarball with gzip-compressed layers."""
    blobs = {sha(config): config}
    descs = []
    for layer in layers:
        gz = gzip.compress(layer, mtime=0)
        blobs[sha(gz)] = gz
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": sha(gz), "size": len(gz)})
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[sha(manifest)] = manifest
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": annotations}]}
    files = {f"blobs/sha256/{d[7:]}": b for d, b in blobs.items()}
    files["index.json"] = json.dumps(index).encode()
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    return tar_of(files)


def layer_tar(files: dict) -> bytes:
    return tar_of(files)


@pytest.fixture(scope="module")
def busybox_layer(test_images) -> bytes:
    """The busybox layer (uncompressed) out of the docker-archive the script built."""
    with tarfile.open(os.path.join(test_images, "busybox.tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return tar.extractfile(manifest[0]["Layers"][0]).read()


# -- loading the test images ------------------------------------------------------------------

def test_load_docker_archive(service, test_images):
    messages = service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))
    assert messages == ["Loaded image: busybox:latest"]
    [image] = service.list()
    assert image.repo_tags == ["busybox:latest"]
    assert image.id == sha(service.store.read_bytes(image.id))
    assert image.config["config"]["Cmd"] == ["sh"]
    assert image.manifest_digest and service.store.has(image.manifest_digest)
    for text in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                 "index.docker.io/library/busybox", image.id, image.id[7:], image.id[7:19],
                 image.id[:15], f"busybox@{image.manifest_digest}"):
        assert service.get(text).id == image.id, text
    [chain] = service.resolve_rootfs(image)
    assert service.chain_ids("busybox") == [chain]
    fs = service.snapshots.path(chain)
    busybox = os.stat(os.path.join(fs, "bin", "busybox"))
    assert os.stat(os.path.join(fs, "bin", "sh")).st_ino == busybox.st_ino
    assert stat.S_IMODE(os.stat(os.path.join(fs, "tmp")).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(os.path.join(fs, "root")).st_mode) == 0o700
    assert image.size >= busybox.st_size
    # idempotent
    assert service.load(open(os.path.join(test_images, "busybox.tar"), "rb")) == \
        ["Loaded image: busybox:latest"]
    assert len(service.list()) == 1


def test_load_oci_layout_same_image(service, test_images):
    assert service.load(open(os.path.join(test_images, "busybox-oci.tar"), "rb")) == \
        ["Loaded image: busybox:latest"]
    [image] = service.list()
    layer = image.layers[0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert layer["diffID"] == layer["chainID"] != layer["digest"]
    # the docker-archive holds the same config, so the same image
    service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))
    assert [i.id for i in service.list()] == [image.id]


@pytest.mark.parametrize("compress", ["gzip", "bz2", "lzma"])
def test_load_compressed_input(service, test_images, compress):
    data = __import__(compress).compress(read(os.path.join(test_images, "busybox.tar")))
    assert service.load(io.BytesIO(data)) == ["Loaded image: busybox:latest"]


def test_load_legacy_layout_with_shared_layers(service, busybox_layer):
    extra = layer_tar({"hello.txt": b"hi\n"})
    base = config_for([busybox_layer])
    app = config_for([busybox_layer, extra], cmd=("cat", "/hello.txt"))
    data = legacy_archive([(base, [busybox_layer], ["busybox:latest"]),
                           (app, [busybox_layer, extra], ["hello:1", "localhost:5000/hi:2"])])
    assert service.load(io.BytesIO(data)) == ["Loaded image: busybox:latest",
                                              "Loaded image: hello:1",
                                              "Loaded image: localhost:5000/hi:2"]
    hello = service.get("hello:1")
    assert hello.id == sha(app) and hello.manifest_digest is None
    assert hello.repo_tags == ["hello:1", "localhost:5000/hi:2"]
    assert service.get("localhost:5000/hi:2").id == hello.id
    chains = hello.chain_ids
    assert chains[0] == service.get("busybox").chain_ids[0]
    assert open(os.path.join(service.snapshots.path(chains[1]), "hello.txt")).read() == "hi\n"
    # removing one image keeps the layer the other still needs
    assert service.remove("busybox") == [{"Untagged": "busybox:latest"},
                                         {"Deleted": sha(base)}]
    assert service.snapshots.exists(chains[0])
    assert service.store.has(sha(busybox_layer))


def test_load_untagged_oci_layout(service, busybox_layer):
    config = config_for([busybox_layer])
    data = oci_archive(config, [busybox_layer], {"org.opencontainers.image.ref.name": "latest"})
    assert service.load(io.BytesIO(data)) == [f"Loaded image ID: {sha(config)}"]
    assert service.get(sha(config)).repo_tags == []
    named = oci_archive(config, [busybox_layer],
                        {"org.opencontainers.image.ref.name": "example.com/team/app:v1"})
    assert service.load(io.BytesIO(named)) == ["Loaded image: example.com/team/app:v1"]


def test_tag_moves_as_docker_does(service, busybox_layer):
    one, two = config_for([busybox_layer], cmd=("one",)), config_for([busybox_layer], cmd=("two",))
    service.load(io.BytesIO(legacy_archive([(one, [busybox_layer], ["app:latest"])])))
    messages = service.load(io.BytesIO(legacy_archive([(two, [busybox_layer], ["app:latest"])])))
    assert messages == [f"The image app:latest already exists, renaming the old one with ID "
                        f"{sha(one)} to empty string", "Loaded image: app:latest"]
    assert service.get("app").id == sha(two)
    assert service.get(sha(one)).repo_tags == []  # kept, dangling


# -- what must not load, and leaves nothing ---------------------------------------------------

def _corruptions(test_images, busybox_layer):
    data = read(os.path.join(test_images, "busybox.tar"))
    oci = read(os.path.join(test_images, "busybox-oci.tar"))
    with tarfile.open(os.path.join(test_images, "busybox.tar")) as tar:
        layer_path = json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]
        offset = tar.getmember(layer_path).offset_data
        last = tar.getmembers()[-1].offset_data
    flipped = bytearray(data)
    flipped[offset + 5000] ^= 0xFF
    other = layer_tar({"x": b"not the layer the config names"})
    config = config_for([busybox_layer])
    return {
        "truncated-in-layer": data[: offset + 100000],
        "truncated-in-last-file": data[: last + 10],
        "truncated-half": data[: len(data) // 2],
        "truncated-oci": oci[: len(oci) - 2048],
        "truncated-gzip": gzip.compress(data)[:-100],
        "garbage": b"not a tarball at all" * 100,
        "empty": b"",
        "flipped-byte-in-blob": bytes(flipped),
        "wrong-layer-for-config": legacy_archive([(config, [other], ["busybox:latest"])]),
        "second-layer-wrong": legacy_archive(
            [(config_for([busybox_layer, busybox_layer]), [busybox_layer, other], ["x:1"])]),
        "missing-layer": tar_of({"manifest.json": json.dumps(
            [{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["nope/layer.tar"]}]).encode(),
            "c.json": config}),
        "layer-count-mismatch": legacy_archive([(config, [], ["a:1"])]),
        "not-an-image": tar_of({"hello.txt": b"hi"}),
        "bad-manifest-json": tar_of({"manifest.json": b"{not json"}),
        "bad-tag": legacy_archive([(config, [busybox_layer], ["Bad/Reference"])]),
    }


@pytest.mark.parametrize("case", [
    "truncated-in-layer", "truncated-in-last-file", "truncated-half", "truncated-oci", "truncated-gzip",
    "garbage", "empty", "flipped-byte-in-blob", "wrong-layer-for-config", "second-layer-wrong",
    "missing-layer", "layer-count-mismatch", "not-an-image", "bad-manifest-json", "bad-tag"])
def test_corrupt_load_leaves_nothing(service, test_images, busybox_layer, case):
    data = _corruptions(test_images, busybox_layer)[case]
    with pytest.raises(InvalidArgument) as info:
        service.load(io.BytesIO(data))
    assert str(info.value)
    nothing_stored(service)


def test_corrupt_load_keeps_existing_images(service, test_images, busybox_layer):
    service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))
    before = service.list()
    blobs = sorted(service.store.walk())
    with pytest.raises(InvalidArgument):
        service.load(io.BytesIO(_corruptions(test_images, busybox_layer)["second-layer-wrong"]))
    assert service.list() == before
    assert sorted(service.store.walk()) == blobs
    assert service.snapshots.list() == before[0].chain_ids


@pytest.mark.parametrize("point", ["content.ingest.before_rename",
                                   "snapshot.unpack.before_rename"])
def test_killed_load_leaves_no_image(tmp_path, service, test_images, point):
    code = ("import sys; from skiff.engine.images import ImageService; "
            "from skiff.snapshot import Snapshotter; "
            "from skiff.store import ContentStore, MetadataDB; r = sys.argv[1]; "
            "s = ImageService(ContentStore(r), MetadataDB(r + '/skiff.db'), Snapshotter(r)); "
            "s.load(open(sys.argv[2], 'rb'))")
    env = dict(os.environ, SKIFF_FAILPOINTS=point, PYTHONPATH=os.path.abspath(SRC))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path),
                           os.path.join(test_images, "busybox.tar")], env=env)
    assert proc.returncode == failpoint.EXIT_STATUS
    assert service.list() == []
    assert service.snapshots.list() == []
    service.cleanup()
    nothing_stored(service)
    assert service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))


# -- lookups, tags, removal -------------------------------------------------------------------

def test_get_errors(service):
    with pytest.raises(NotFound, match=r"^No such image: busybox:latest$"):
        service.get("busybox")
    with pytest.raises(NotFound, match=r"^No such image: example.com/x:1$"):
        service.get("example.com/x:1")
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        service.get("Bad/Reference")
    with pytest.raises(NotFound):
        service.get("sha256:" + "0" * 64)
    with pytest.raises(NotFound):
        service.remove("busybox")


def test_remove_rules(service, test_images):
    service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))
    image = service.get("busybox")
    assert service.tag("busybox", "mine:v1") == "docker.io/library/mine:v1"
    assert service.get("mine:v1").repo_tags == ["busybox:latest", "mine:v1"]
    with pytest.raises(Conflict, match="image is referenced in multiple repositories"):
        service.remove(image.short_id)
    assert service.remove("mine:v1") == [{"Untagged": "mine:v1"}]
    records = ContainerRecords(service.db)
    records.insert("c" * 64, "web", image.id, "2024", {}, {"Running": False})
    with pytest.raises(Conflict, match=r'unable to remove repository reference "busybox" '
                                       r"\(must force\) - container cccccccccccc is using"):
        service.remove("busybox")
    with pytest.raises(Conflict, match="being used by stopped container"):
        service.remove(image.id)
    records.update_state("c" * 64, {"Running": True})
    with pytest.raises(Conflict, match="cannot be forced"):
        service.remove(image.id, force=True)
    # forced: untagged, but kept while a container uses it
    assert service.remove("busybox", force=True) == [{"Untagged": "busybox:latest"}]
    assert service.get(image.id).repo_tags == []
    records.delete("c" * 64)
    report = service.remove(image.short_id)
    assert report[0] == {"Deleted": image.id}
    nothing_stored(service)


def test_multi_platform_layout_takes_this_hosts_image(service, busybox_layer):
    """An index whose other platforms' blobs are absent (as `docker save` of one platform of
    a multi-platform image writes it): the host's image loads, the rest is ignored."""
    config = config_for([busybox_layer])
    single = tarfile.open(fileobj=io.BytesIO(oci_archive(config, [busybox_layer], {})))
    files = {m.name: single.extractfile(m).read() for m in single.getmembers()}
    [host_desc] = json.loads(files["index.json"])["manifests"]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    other = "arm64" if arch != "arm64" else "amd64"
    nested = json.dumps({"schemaVersion": 2,
                         "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [
        dict(host_desc, platform={"os": "linux", "architecture": other}, digest=sha(b"gone")),
        dict(host_desc, platform={"os": "linux", "architecture": arch}),
        dict(host_desc, platform={"os": "unknown", "architecture": "unknown"},
             digest=sha(b"attestation"))]}).encode()
    files[f"blobs/sha256/{sha(nested)[7:]}"] = nested
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested),
        "size": len(nested), "annotations": {"io.containerd.image.name": "multi:1"}}]}).encode()
    assert service.load(io.BytesIO(tar_of(files))) == ["Loaded image: multi:1"]
    assert service.get("multi:1").id == sha(config)


def test_save_survives_a_removal_while_it_streams(service, test_images):
    """The archive's blobs are opened before the first byte is written: removing the image
    while a slow client reads the archive deletes its blobs, and the archive is still whole."""
    from skiff.engine import archive

    service.load(open(os.path.join(test_images, "busybox.tar"), "rb"))
    image_id = service.get("busybox").id
    selected = archive.resolve_names(service, ["busybox"])

    class RemovingWriter(io.BytesIO):
        removed = False

        def write(self, data):
            if not self.removed:
                self.removed = True
                report = service.remove("busybox")
                assert {"Deleted": image_id} in report
            return super().write(data)

    out = RemovingWriter()
    archive.write_archive(service, selected, out)
    assert out.removed and service.list() == []
    assert list(service.store.walk()) == []          # the removal really freed the blobs
    assert service.load(io.BytesIO(out.getvalue())) == ["Loaded image: busybox:latest"]
    assert service.get("busybox").id == image_id
    # an image removed before the archive starts is a clear error
    service.remove("busybox")
    with pytest.raises(NotFound):
        archive.write_archive(service, selected, io.BytesIO())
