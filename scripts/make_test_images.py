#!/usr/bin/env python3
"""Build skiff's test image, `busybox:latest`, from the host's static busybox. Standard library only.

    make_test_images.py --out DIR

writes, byte-for-byte the same on every run on the same host and busybox build:

    DIR/busybox.tar       docker-archive as `docker save` (25+) writes it: manifest.json
                          (Config/RepoTags/Layers), repositories, the config and the layer under
                          blobs/sha256/, plus index.json and oci-layout, so that it is an OCI image
                          layout as well. docker (old and new), podman and skiff load it.
    DIR/busybox-oci/      OCI image layout (oci-layout, index.json, blobs/), gzip-compressed layer
    DIR/busybox-oci.tar   the same layout as a tarball

The image has ONE layer: bin/busybox with its applets hard-linked to it (the names come from
`busybox --list-full`), etc/passwd, etc/group, root (0700), tmp (1777) and a few empty
directories. Every mtime is fixed and the JSON is serialised canonically, so the digests depend
only on the busybox binary and the host's architecture. Both outputs carry the same config, so
the image id is the same whichever is loaded.

It is quick and idempotent: when the outputs exist and were built from the same busybox by the
same version of this script, it does nothing.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile

BUSYBOX = "/bin/busybox"
VERSION = 1  # bump when the output changes, so that cached outputs are rebuilt
EPOCH = 1704067200  # 2024-01-01T00:00:00Z: every mtime in the image
CREATED = "2024-01-01T00:00:00Z"
REPO, TAG = "busybox", "latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""

# directories: path -> mode (besides the parents of the applet links, which are 0755)
DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
    "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755,
    "usr/sbin": 0o755, "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755,
    "var/www": 0o755,
}


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x",
            "riscv64": "riscv64"}.get(machine, machine)


def applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True, text=True)
    names = sorted({line.strip().lstrip("/") for line in out.stdout.splitlines() if line.strip()})
    return [n for n in names if n != "bin/busybox" and ".." not in n.split("/")]


def _info(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _tar_bytes(add) -> bytes:
    """A tar built by `add(tarfile)`, with fixed headers (USTAR, no pax timestamps)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add(tar)
    return buf.getvalue()


def build_layer(busybox: str) -> bytes:
    with open(busybox, "rb") as f:
        binary = f.read()
    links = applets(busybox)
    dirs = dict(DIRS)
    for link in links:
        parent = os.path.dirname(link)
        while parent and parent not in dirs:
            dirs[parent] = 0o755
            parent = os.path.dirname(parent)

    def add(tar):
        for d in sorted(dirs):
            tar.addfile(_info(d + "/", tarfile.DIRTYPE, dirs[d]))
        tar.addfile(_info("bin/busybox", tarfile.REGTYPE, 0o755, len(binary)), io.BytesIO(binary))
        for link in links:
            tar.addfile(_info(link, tarfile.LNKTYPE, 0o755, linkname="bin/busybox"))
        for name, text in (("etc/group", GROUP), ("etc/passwd", PASSWD)):
            data = text.encode()
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    return _tar_bytes(add)


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        gz.write(data)
    return buf.getvalue()


def build_config(diff_id: str) -> bytes:
    return canonical_json({
        "architecture": host_arch(),
        "config": {"Cmd": ["sh"], "Env": [PATH_ENV]},
        "created": CREATED,
        "history": [
            {"created": CREATED,
             "created_by": "/bin/sh -c #(nop) ADD busybox from the host (make_test_images.py)"},
            {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
             "empty_layer": True},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })


def descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    desc = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        desc["annotations"] = annotations
    return desc


def build_manifest(config: bytes, layer: bytes, layer_type: str) -> bytes:
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": descriptor(MT_CONFIG, config),
        "layers": [descriptor(layer_type, layer)],
    })


def build_index(manifest: bytes) -> bytes:
    annotations = {"io.containerd.image.name": f"docker.io/library/{REPO}:{TAG}",
                   "org.opencontainers.image.ref.name": TAG}
    return canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX,
                           "manifests": [descriptor(MT_MANIFEST, manifest, annotations)]})


OCI_LAYOUT = canonical_json({"imageLayoutVersion": "1.0.0"})


def layout_files(blobs: list[bytes], index: bytes, extra: dict[str, bytes]) -> dict[str, bytes]:
    """path -> content of an OCI image layout (plus `extra` files), sorted by path."""
    files = {f"blobs/sha256/{sha256(b)[7:]}": b for b in blobs}
    files["index.json"] = index
    files["oci-layout"] = OCI_LAYOUT
    files.update(extra)
    return dict(sorted(files.items()))


def archive_bytes(files: dict[str, bytes]) -> bytes:
    def add(tar):
        tar.addfile(_info("blobs/", tarfile.DIRTYPE, 0o755))
        tar.addfile(_info("blobs/sha256/", tarfile.DIRTYPE, 0o755))
        for name, data in files.items():
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return _tar_bytes(add)


def build(busybox: str = BUSYBOX) -> dict[str, dict[str, bytes] | bytes]:
    """Everything the outputs hold, in memory (the image is ~2 MB)."""
    layer = build_layer(busybox)
    config = build_config(sha256(layer))

    # docker-archive: uncompressed layer, as `docker save` writes it
    manifest = build_manifest(config, layer, MT_LAYER)
    layer_hex = sha256(layer)[7:]
    docker_manifest = canonical_json([{
        "Config": f"blobs/sha256/{sha256(config)[7:]}",
        "RepoTags": [f"{REPO}:{TAG}"],
        "Layers": [f"blobs/sha256/{layer_hex}"],
    }])
    repositories = canonical_json({REPO: {TAG: layer_hex}})
    docker_files = layout_files([config, layer, manifest], build_index(manifest),
                                {"manifest.json": docker_manifest, "repositories": repositories})

    # OCI layout: gzip-compressed layer, as registries serve it
    layer_gz = gzip_bytes(layer)
    oci_manifest = build_manifest(config, layer_gz, MT_LAYER_GZIP)
    oci_files = layout_files([config, layer_gz, oci_manifest], build_index(oci_manifest), {})
    return {"docker": docker_files, "oci": oci_files}


def _stamp(busybox: str) -> str:
    st = os.stat(busybox)
    return canonical_json({"version": VERSION, "busybox": [st.st_size, st.st_mtime_ns, st.st_ino],
                           "arch": host_arch()}).decode()


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_layout(path: str, files: dict[str, bytes]) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    tmp = tempfile.mkdtemp(prefix=".busybox-oci.", dir=parent)
    try:
        os.chmod(tmp, 0o755)
        for name, data in files.items():
            full = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=".busybox-oci-old.", dir=parent)
            os.rename(path, os.path.join(old, "x"))
        os.rename(tmp, path)
        if old:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make(out: str, busybox: str = BUSYBOX, force: bool = False) -> bool:
    """Write the outputs into `out`; returns False when they were already up to date."""
    if not os.path.exists(busybox):
        raise SystemExit(f"{busybox} is missing: install it with `apt-get install busybox-static`")
    os.makedirs(out, exist_ok=True)
    stamp_path = os.path.join(out, ".busybox.stamp")
    outputs = [os.path.join(out, n) for n in ("busybox.tar", "busybox-oci.tar",
                                               "busybox-oci/index.json")]
    stamp = _stamp(busybox)
    if not force and all(os.path.exists(p) for p in outputs):
        try:
            with open(stamp_path) as f:
                if f.read() == stamp:
                    return False
        except FileNotFoundError:
            pass
    built = build(busybox)
    _write_atomic(os.path.join(out, "busybox.tar"), archive_bytes(built["docker"]))
    _write_atomic(os.path.join(out, "busybox-oci.tar"), archive_bytes(built["oci"]))
    _write_layout(os.path.join(out, "busybox-oci"), built["oci"])
    _write_atomic(stamp_path, stamp.encode())
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--busybox", default=BUSYBOX, help="static busybox binary to use")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    if make(args.out, args.busybox, args.force):
        print(f"wrote busybox:latest to {args.out}/busybox.tar, busybox-oci/ and busybox-oci.tar")
    else:
        print(f"busybox:latest in {args.out} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
