"""snapshot/: image layers unpacked on disk, and the overlay mounts of containers' rootfs.

Owns `<root>/snapshots/`. `Snapshotter` unpacks layer blobs into committed snapshots named by
chain id and prepares active (writable) snapshots, handing the runtime `skiff.oci.mount.Mount`
values; `unpack.apply_layer` is the safe tar extraction with whiteout conversion. Knows no
images, containers or database. May import skiff.oci, skiff.store, skiff.linux and the
top-level helpers only (never engine/ or above).
"""

from skiff.snapshot.snapshotter import Snapshotter, Usage, chain_id
from skiff.snapshot.unpack import LayerResult, apply_layer

__all__ = ["Snapshotter", "Usage", "chain_id", "apply_layer", "LayerResult"]
