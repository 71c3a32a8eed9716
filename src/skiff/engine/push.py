"""Push: an image's blobs and manifest to a registry, as `docker push` does.

    push(images, "localhost:5000/busybox:latest", progress=print)

Each layer blob is checked first (HEAD) and skipped when the registry has it; otherwise it is
uploaded whole (POST then one PUT), from the content store. A layer stored uncompressed (a
load or a commit) is sent gzip-compressed as docker sends it, compressed while it streams
(POST, a chunked PATCH, PUT ?digest=), and its compressed digest is remembered for the next
push. Then the config blob, then a
manifest: Docker schema 2 when every layer has a Docker media type (what docker pushes), OCI
otherwise. Without a tag, every tag of the repository is pushed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from skiff.errors import InvalidArgument, NotFound
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.registry import auth

from skiff.engine.archive import manifest_for
from skiff.engine.pull import RegistryOptions, aux, client_for, message, record_digest

Progress = Callable[[dict], None]
PROGRESS_STEP = 512 * 1024


class _Counting:
    """A blob file that reports how much of it has been read (sent)."""

    def __init__(self, f, report: Callable[[int], None]):
        self.f = f
        self.done = 0
        self.last = 0
        self.report = report

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        if self.done - self.last >= PROGRESS_STEP or not data:
            self.last = self.done
            self.report(self.done)
        return data


GZIP_FOR = {oci_image.DOCKER_LAYER: oci_image.DOCKER_LAYER_GZIP,
            oci_image.OCI_LAYER: oci_image.OCI_LAYER_GZIP}
GZIP_LEVEL = 1        # isa-l's level 1 packs as tight as zlib's 6 here, ten times faster
COMPRESS_CHUNK = 1 << 20


def _compressor():
    """A gzip compressor: isa-l's when installed (a pull-through of hundreds of MB/s), else
    zlib's. Both write standard gzip, which every registry and engine reads."""
    try:
        from isal import isal_zlib
        return isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    except ImportError:
        import zlib
        return zlib.compressobj(6, zlib.DEFLATED, 31)


def _gzip_chunks(f, report: Callable[[int], None]):
    """The gzip stream of an open blob, chunk by chunk (made while it is sent)."""
    compressor = _compressor()
    done = last = 0
    while True:
        data = f.read(COMPRESS_CHUNK)
        if not data:
            break
        done += len(data)
        if done - last >= PROGRESS_STEP:
            last = done
            report(done)
        out = compressor.compress(data)
        if out:
            yield out
    report(done)
    yield compressor.flush()


def _push_compressed(client, store, repo: str, layer: dict, media_type: str, sid: str,
                     mount_from: str | None, options: RegistryOptions, emit: Progress) -> dict:
    """Push an uncompressed layer gzip-compressed; returns its manifest descriptor. The
    compressed digest is remembered, so that a later push finds it in the registry (or
    mounts it from another repository) without compressing again."""
    digest, size = layer["digest"], layer["size"]
    known = store.compressed_of(digest, "gzip")
    if known and client.blob_exists(repo, known[0]):
        emit(message("Layer already exists", sid))
        return {"mediaType": media_type, "digest": known[0], "size": known[1]}
    with store.open(digest) as f:
        chunks = _gzip_chunks(f, lambda done: emit(message("Pushing", sid, done, size)))
        new_digest, new_size, how = client.upload_stream(
            repo, chunks, known_digest=known[0] if known else None,
            mount_from=mount_from if known else None, chunk_size=options.upload_chunk_size)
    if how == "mounted":
        emit(message(f"Mounted from {mount_from}", sid))
        return {"mediaType": media_type, "digest": known[0], "size": known[1]}
    store.remember_compressed(digest, "gzip", new_digest, new_size)
    emit(message("Pushed", sid))
    return {"mediaType": media_type, "digest": new_digest, "size": new_size}


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


def push(images, text: str, *, credentials: auth.Credentials | None = None,
         options: RegistryOptions | None = None, progress: Progress | None = None,
         all_tags: bool = False) -> list[str]:
    """Push one tag (or every tag of the repository); returns the manifest digests."""
    options = options or RegistryOptions()
    emit = progress or (lambda message: None)
    ref = reference.parse(text, default_tag=not all_tags)
    if ref.digest:
        raise InvalidArgument("cannot push a digest reference")
    if ref.tag:
        tags = [ref]
    else:
        tags = sorted({reference.parse(t) for img in images.list() for t in img.repo_tags
                       if reference.parse(t).repository == ref.repository}, key=str)
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar()}")
    client = client_for(ref, options, credentials)
    digests = []
    try:
        emit(message(
            f"The push refers to repository [{ref.repository if ref.domain != 'docker.io' else 'docker.io/' + ref.path}]"))
        for tag_ref in tags:
            digests.append(_push_one(images, client, tag_ref, options, emit))
    finally:
        client.close()
    return digests


def _push_one(images, client, ref: reference.Reference, options: RegistryOptions,
              emit: Progress) -> str:
    image = images.get(str(ref))
    store = images.store
    repo = ref.path
    layers = image.layers
    for layer in layers:
        if not store.has(layer["digest"]):
            raise NotFound(f"layer {layer['digest']} of {ref.familiar()} is not in the content "
                           f"store (it was shared with an image pulled earlier); pull or load "
                           f"the image again to push it")
    for layer in reversed(layers):
        emit(message("Preparing", _short(layer["diffID"])))
    # another repository of this registry that holds the image: its blobs can be mounted
    mount_from = next((r.path for r in (reference.parse(t) for t in image.repo_tags)
                       if r.domain == ref.domain and r.path != repo), None)

    pushed: dict[str, dict] = {}   # layer digest -> the descriptor the manifest names

    def one(layer: dict) -> None:
        sid = _short(layer["diffID"])
        digest, size = layer["digest"], layer["size"]
        gzip_type = GZIP_FOR.get(layer.get("mediaType"))
        if gzip_type:        # stored uncompressed: pushed gzip-compressed, as docker does
            pushed[digest] = _push_compressed(client, store, repo, layer, gzip_type, sid,
                                              mount_from, options, emit)
            return
        pushed[digest] = layer
        if client.blob_exists(repo, digest):
            emit(message("Layer already exists", sid))
            return
        with store.open(digest) as f:
            body = _Counting(f, lambda done: emit(message(
                "Pushing", sid, done, size)))
            how = client.upload_blob(repo, digest, size, body, mount_from=mount_from,
                                     chunk_size=options.upload_chunk_size)
        if how == "mounted":
            emit(message(f"Mounted from {mount_from}", sid))
        else:
            emit(message("Pushed", sid))

    with ThreadPoolExecutor(max_workers=max(1, options.upload_concurrency),
                            thread_name_prefix="skiff-push") as pool:
        for future in [pool.submit(one, l) for l in layers]:
            future.result()
    layers = [pushed[l["digest"]] for l in layers]
    config_size = store.size(image.id)
    if not client.blob_exists(repo, image.id):
        with store.open(image.id) as f:
            client.upload_blob(repo, image.id, config_size, f)
    data, media_type = manifest_for(image.id, config_size, layers)
    digest = client.put_manifest(repo, ref.tag, data, media_type)
    record_digest(images, image.id, digest)
    emit(message(
        f"{ref.tag}: digest: {digest} size: {len(data)}"))
    emit(aux({"Tag": ref.tag, "Digest": digest, "Size": len(data)}))
    return digest
