"""Pull: an image from a registry into the content store, the snapshots and the image table.

    pull(images, "busybox", progress=print) -> ImageRecord

The reference's manifest is fetched (an index resolves to the platform's manifest), then the
config, then the layers: up to `concurrency` downloads run in parallel, each streamed into the
ContentStore (digest and size verified while it writes, resumed after a broken connection),
while this thread unpacks the layers bottom-up as soon as each one is complete. The image row
and its tag are written last, in one transaction, by ImageService; a pull that fails leaves no
image, and the snapshots and blobs it created are removed.

`progress` receives docker's JSON progress messages (dicts, see wire/progress.py), from
several threads: it must be thread-safe.

ImageService internals used (one place, `_commit`): `_lock`, `_Candidate`, `_unpack`,
`_commit`, `_discard`, `_find` — the same steps `ImageService.load` runs.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from skiff.errors import InvalidArgument, NotFound, SkiffError
from skiff.oci import image as oci_image
from skiff.oci import reference
from skiff.registry import auth, hosts
from skiff.registry.client import RegistryClient, RegistryUnavailable

DEFAULT_CONCURRENCY = 3      # docker's max-concurrent-downloads
DEFAULT_UPLOAD_CONCURRENCY = 5   # docker's max-concurrent-uploads
STREAM_BUFFER = 1 << 20      # network reads of a layer that unpacks while it downloads
PROGRESS_STEP = 512 * 1024   # emit a Downloading message at most every this many bytes

Progress = Callable[[dict], None]


@dataclass
class RegistryOptions:
    """What the daemon's configuration says about registries."""
    insecure: list[str] = field(default_factory=list)
    certs_dir: str | None = "/etc/skiff/certs.d"
    concurrency: int = DEFAULT_CONCURRENCY
    upload_concurrency: int = DEFAULT_UPLOAD_CONCURRENCY
    config_path: str | None = None        # docker-style config.json with stored credentials
    retries: int = 5
    upload_chunk_size: int | None = None   # None: monolithic uploads (one PUT per blob)
    mirrors: list[str] = field(default_factory=list)   # Docker Hub mirrors, tried in order
    # None: any registry. Otherwise only loopback and these domains are ever contacted (the
    # test suite's daemons are given "" so that they never leave the machine).
    allowed: tuple[str, ...] | None = None

    @classmethod
    def from_environment(cls, environ: dict) -> "RegistryOptions":
        """For entry points: SKIFF_REGISTRY_ALLOW (comma-separated domains; "" = loopback
        only), SKIFF_INSECURE_REGISTRIES, SKIFF_MAX_CONCURRENT_DOWNLOADS,
        SKIFF_MAX_CONCURRENT_UPLOADS, SKIFF_UPLOAD_CHUNK_SIZE (bytes; chunked uploads),
        SKIFF_REGISTRY_MIRRORS (comma-separated URLs). daemon.json and skiffd's flags
        override them (api/registry_config.py)."""
        options = cls()
        if "SKIFF_REGISTRY_ALLOW" in environ:
            options.allowed = tuple(x.strip() for x in environ["SKIFF_REGISTRY_ALLOW"]
                                    .split(",") if x.strip())
        if environ.get("SKIFF_INSECURE_REGISTRIES"):
            options.insecure = [x.strip() for x in environ["SKIFF_INSECURE_REGISTRIES"]
                                .split(",") if x.strip()]
        if environ.get("SKIFF_REGISTRY_MIRRORS"):
            options.mirrors = [x.strip() for x in environ["SKIFF_REGISTRY_MIRRORS"].split(",")
                               if x.strip()]
        if (environ.get("SKIFF_UPLOAD_CHUNK_SIZE") or "").isdigit():
            options.upload_chunk_size = int(environ["SKIFF_UPLOAD_CHUNK_SIZE"]) or None
        if (environ.get("SKIFF_MAX_CONCURRENT_DOWNLOADS") or "").isdigit():
            options.concurrency = max(1, int(environ["SKIFF_MAX_CONCURRENT_DOWNLOADS"]))
        if (environ.get("SKIFF_MAX_CONCURRENT_UPLOADS") or "").isdigit():
            options.upload_concurrency = max(1, int(environ["SKIFF_MAX_CONCURRENT_UPLOADS"]))
        return options


def message(status: str, id: str | None = None, current: int | None = None,
            total: int | None = None) -> dict:
    """One progress message as docker's stream carries it (the API adds the rendered bar)."""
    out: dict = {"status": status}
    if current is not None:
        out["progressDetail"] = {"current": current, "total": total}
    if id is not None:
        out["id"] = id
    return out


def aux(payload: dict) -> dict:
    return {"aux": payload}


def credentials_from_header(value: str | None) -> auth.Credentials:
    """The X-Registry-Auth header (base64url JSON) as credentials (empty when unreadable)."""
    return auth.decode_registry_auth_header(value)


def login(server: str, username: str, password: str, options: RegistryOptions) -> None:
    """Check credentials against a registry (`docker login`); Unauthorized when refused."""
    domain = login_domain(server)
    client = RegistryClient(hosts.endpoint_for(domain, options.insecure),
                            auth.Credentials(username, password), certs_dir=options.certs_dir)
    try:
        client.ping()
    finally:
        client.close()


def login_domain(server: str) -> str:
    """`https://index.docker.io/v1/` -> docker.io; `localhost:5000` as it is."""
    text = (server or "").strip()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.split("/")[0]
    if not text or text in hosts.DOCKER_HUB_DOMAINS:
        return reference.DEFAULT_DOMAIN
    return text


def host_platform() -> oci_image.Platform:
    import os
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    variant = "v7" if machine == "armv7l" else None
    return oci_image.Platform("linux", arch, variant)


def client_for(ref: reference.Reference, options: RegistryOptions,
               credentials: auth.Credentials | None = None) -> RegistryClient:
    endpoint = hosts.endpoint_for(ref.domain, options.insecure)
    if options.allowed is not None and not hosts.is_loopback(endpoint.host) and \
            ref.domain not in options.allowed:
        raise RegistryUnavailable(f'Get "https://{endpoint.host}/v2/": registry {ref.domain} '
                                  f"is not in this daemon's allowed registries")
    if not credentials:
        try:
            credentials = auth.load_credentials(hosts.auth_key(ref.domain), options.config_path)
        except InvalidArgument:
            credentials = None
    return RegistryClient(endpoint, credentials, certs_dir=options.certs_dir,
                          retries=options.retries)


def mirror_client(url: str, options: RegistryOptions) -> RegistryClient:
    """A client for a mirror URL (`https://mirror.example`, `http://127.0.0.1:5000`); plain
    HTTP only where the host may use it (loopback, insecure registries)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = parts.netloc
    secure = parts.scheme == "https" or not hosts.is_insecure(host, options.insecure)
    return RegistryClient(hosts.Endpoint(host, secure, host), None,
                          certs_dir=options.certs_dir, retries=options.retries,
                          scheme="http" if parts.scheme == "http" else None)


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]


class Pull:
    """One pull in two steps, so that the API can answer an unknown image or a refused login
    with an HTTP error before it starts streaming: `resolve()` (manifests), then `run()`."""

    def __init__(self, images, text: str, *, platform: str | oci_image.Platform | None = None,
                 credentials: auth.Credentials | None = None,
                 options: RegistryOptions | None = None):
        self.images = images
        self.options = options or RegistryOptions()
        self.ref = reference.parse(text)
        self.platform = (oci_image.Platform.parse(platform) if isinstance(platform, str)
                         and platform else platform or host_platform())
        self.credentials = credentials
        self.client: RegistryClient | None = None
        self.top = None
        self.manifest: oci_image.Manifest | None = None

    def resolve(self) -> None:
        """Fetch the manifest (from a Docker Hub mirror first, when configured: docker's
        `registry-mirrors`; a mirror that fails or lacks the image is skipped)."""
        ref = self.ref
        if ref.domain == reference.DEFAULT_DOMAIN:
            for mirror in self.options.mirrors:
                try:
                    self.client = mirror_client(mirror, self.options)
                    self._resolve()
                    return
                except SkiffError:
                    continue
        self.client = client_for(ref, self.options, self.credentials)
        self._resolve()

    def _resolve(self) -> None:
        ref = self.ref
        try:
            self.top = self.client.get_manifest(ref.path, ref.digest or ref.tag,
                                                expected_digest=ref.digest)
            fetched = self.top
            if fetched.is_index:
                desc = manifest_select(fetched.document, self.platform)
                fetched = self.client.get_manifest(ref.path, desc.digest,
                                                   expected_digest=desc.digest)
                if fetched.is_index:
                    raise InvalidArgument("invalid manifest: an index names another index")
            self.manifest = fetched.document
        except BaseException:
            self.close()
            raise

    def run(self, progress: Progress | None = None):
        emit = progress or (lambda message: None)
        ref = self.ref
        if self.manifest is None:
            self.resolve()
        try:
            emit(message(f"Pulling from {ref.path}",
                                                ref.digest or ref.tag))
            existing = _existing(self.images, ref, self.manifest.config.digest)
            if existing is not None:
                emit(message(f"Digest: {self.top.digest}"))
                emit(message(
                    f"Status: Image is up to date for {ref.familiar()}"))
                return existing
            return _transfer(self.images, self.client, ref.path, ref, self.top.digest,
                             self.manifest, self.options, emit)
        finally:
            self.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def pull(images, text: str, *, platform: str | oci_image.Platform | None = None,
         credentials: auth.Credentials | None = None, options: RegistryOptions | None = None,
         progress: Progress | None = None):
    """Pull `text` (`busybox`, `localhost:5000/x:1`, `name@sha256:...`); returns the record."""
    job = Pull(images, text, platform=platform, credentials=credentials, options=options)
    return job.run(progress)


def pull_all_tags(images, text: str, *, platform=None, credentials=None,
                  options: RegistryOptions | None = None, progress: Progress | None = None):
    """`docker pull --all-tags`: every tag the registry lists for the repository."""
    options = options or RegistryOptions()
    ref = reference.parse(text, default_tag=False)
    client = client_for(ref, options, credentials)
    try:
        tags = client.list_tags(ref.path)
    finally:
        client.close()
    if not tags:
        raise NotFound(f"repository {ref.repository} has no tags")
    records = []
    for tag in sorted(tags):
        records.append(Pull(images, str(ref.with_tag(tag)), platform=platform,
                            credentials=credentials, options=options).run(progress))
    return records


def manifest_select(index: oci_image.Index, wanted: oci_image.Platform):
    from skiff.registry import manifest as registry_manifest
    return registry_manifest.select_platform(index, wanted)


def _existing(images, ref: reference.Reference, config_digest: str):
    """The image the reference already names locally, if it is this very image."""
    try:
        record = images.get(str(ref))
    except NotFound:
        return None
    if record.id == config_digest:     # (the same index may hold other platforms' images)
        return record
    return None


def _transfer(images, client: RegistryClient, repo: str, ref: reference.Reference,
              top_digest: str, manifest: oci_image.Manifest, options: RegistryOptions,
              emit: Progress):
    store = images.store
    snapshots = images.snapshots
    for layer in manifest.layers:
        if layer.media_type in oci_image.FOREIGN_LAYER_TYPES:
            raise InvalidArgument(f"foreign layer {layer.digest} cannot be pulled")
        oci_image.layer_compression(layer.media_type)   # refuses unknown media types
    client.fetch_blob(repo, manifest.config, store)
    config_bytes = store.read_bytes(manifest.config.digest)
    config = oci_image.ImageConfig.from_json(config_bytes)
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidArgument(f"invalid image: {len(manifest.layers)} layers but its config "
                              f"lists {len(config.diff_ids)}")
    chains = oci_image.chain_ids(config.diff_ids)
    ingested: set[str] = set()
    new_snapshots: list[str] = []
    unpacked: set[str] = set()     # snapshots the downloads made
    lock = threading.Lock()

    def download(layer: oci_image.Descriptor, chain: str, diff_id: str,
                 parent: str | None) -> None:
        """Download the layer and unpack it as it arrives: the same bytes go into the
        content store and through the decompressor into the snapshot. The blob is checked
        (size, digest) before the snapshot becomes visible; the snapshot is checked against
        the config's diff id."""
        sid = _short(layer.digest)
        if snapshots.exists(chain) or store.has(layer.digest):
            return
        last = [0]

        def on_bytes(done: int) -> None:
            if done - last[0] >= PROGRESS_STEP or done == layer.size:
                last[0] = done
                emit(message("Downloading", sid, done, layer.size))

        alg = layer.digest.partition(":")[0]
        reader = client.open_blob(repo, layer, on_bytes)
        try:
            with store.writer(alg) as blob:
                tee = io.BufferedReader(_StoringReader(reader, blob, layer), STREAM_BUFFER)

                def verified() -> None:
                    _drain(tee)     # what the decompressor left (a trailer, padding)
                    emit(message("Verifying Checksum", sid))
                    blob.commit(layer.digest, layer.size, durable=False)
                    with lock:
                        ingested.add(layer.digest)

                snapshots.unpack_fileobj(chain, parent, tee, layer.media_type,
                                         expected_diff_id=diff_id, name=layer.digest,
                                         before_commit=verified)
                with lock:
                    unpacked.add(chain)
        finally:
            reader.close()
        emit(message("Download complete", sid))

    for layer, chain in zip(manifest.layers, chains):
        sid = _short(layer.digest)
        emit(message(
            "Already exists" if snapshots.exists(chain) else "Pulling fs layer", sid))
    pool = ThreadPoolExecutor(max_workers=max(1, options.concurrency),
                              thread_name_prefix="skiff-pull")
    futures = []
    try:
        parents = [None] + chains[:-1]
        futures += [pool.submit(download, layer, chain, diff_id, parent)
                    for layer, chain, diff_id, parent in zip(manifest.layers, chains,
                                                             config.diff_ids, parents)]
        parent = None
        for layer, chain, diff_id, future in zip(manifest.layers, chains, config.diff_ids,
                                                 futures):
            future.result()
            sid = _short(layer.digest)
            if chain in unpacked:          # unpacked while it downloaded
                new_snapshots.append(chain)
                emit(message("Extracting", sid, layer.size, layer.size))
                emit(message("Pull complete", sid))
            elif not snapshots.exists(chain):   # its blob was already stored
                emit(message("Extracting", sid, layer.size, layer.size))
                snapshots.unpack(chain, parent, store.path(layer.digest), layer.media_type,
                                 expected_diff_id=diff_id, known_digest=layer.digest)
                new_snapshots.append(chain)
                emit(message("Pull complete", sid))
            parent = chain
        store.sync(ingested)     # on disk before the image row names them
        record = _commit(images, ref, top_digest, manifest, config_bytes, chains,
                         new_snapshots)
    except BaseException:
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        made = new_snapshots + [c for c in chains if c in unpacked and c not in new_snapshots]
        _discard(images, made, ingested | {manifest.config.digest})
        raise
    pool.shutdown(wait=True)
    emit(message(f"Digest: {top_digest}"))
    emit(message(
        f"Status: Downloaded newer image for {ref.familiar()}"))
    return record


class _StoringReader(io.RawIOBase):
    """Reads a blob download, writing every byte into a BlobWriter as it passes (the blob is
    stored and unpacked in one pass). Refuses more bytes than the descriptor says. Wrapped in
    a BufferedReader, so that the decompressor's small reads cost one network read, one hash
    update and one write per MiB."""

    def __init__(self, reader, blob, desc: oci_image.Descriptor):
        self.reader, self.blob, self.desc = reader, blob, desc

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.reader.read(len(b))
        if data:
            if self.blob.size + len(data) > self.desc.size:
                raise InvalidArgument(f"size mismatch for {self.desc.digest}: more than the "
                                      f"expected {self.desc.size} bytes")
            self.blob.write(data)
            b[:len(data)] = data
        return len(data)


def _drain(f) -> None:
    while f.read(1 << 20):
        pass


def _commit(images, ref: reference.Reference, top_digest: str,
            manifest: oci_image.Manifest, config_bytes: bytes, chains: list[str],
            new_snapshots: list[str]):
    """Record the image as ImageService.load does, under its lock: the same candidate, the
    same unpack (which finds every snapshot in place) and the same commit transaction."""
    from skiff.engine import images as images_module

    layers = [{"digest": l.digest, "size": l.size, "mediaType": l.media_type}
              for l in manifest.layers]
    tags = [ref] if ref.tag and not ref.digest else []
    candidate = images_module._Candidate(manifest.config.digest, config_bytes, layers, tags,
                                         top_digest)
    with images._lock:
        # a concurrent removal may have collected what this pull just stored: check again
        for layer, chain in zip(manifest.layers, chains):
            if not images.snapshots.exists(chain):
                raise NotFound(f"layer {layer.digest} vanished during the pull; pull again")
        images._unpack(candidate, new_snapshots)
        images._commit([candidate])
    record_digest(images, manifest.config.digest, top_digest)
    return images.get(str(ref) if tags else manifest.config.digest)


def record_digest(images, image_id: str, digest: str) -> None:
    """Remember the registry's digest for an image (pulled or pushed as it): RepoDigests.
    An image keeps one manifest digest, the latest, where docker keeps one per repository."""
    with images._lock:
        with images.db.transaction() as cur:
            row = cur.execute("SELECT manifest_digest FROM images WHERE id = ?",
                              (image_id,)).fetchone()
            cur.execute("UPDATE images SET manifest_digest = ? WHERE id = ?", (digest, image_id))
        old = row[0] if row else None
        if old and old != digest and not images._blob_used(old):
            images.store.delete(old)      # the manifest blob it was loaded with


def _discard(images, new_snapshots: list[str], digests: set[str]) -> None:
    with images._lock:
        images._discard(new_snapshots, digests)
