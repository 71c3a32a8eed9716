"""store/: content-addressed blobs and the SQLite metadata database.

Owns `<root>/content/blobs/<alg>/<hex>` (`ContentStore`) and `<root>/skiff.db` (`MetadataDB`,
with `ContainerRecords` for the engine's containers table). Knows nothing of images' meaning,
snapshots or containers' lifecycle: it stores bytes and rows. May import skiff.oci and the
top-level helpers only (never snapshot/, engine/ or anything above).
"""

from skiff.store.content import ContentStore
from skiff.store.db import ContainerRecord, ContainerRecords, MetadataDB

__all__ = ["ContentStore", "MetadataDB", "ContainerRecords", "ContainerRecord"]
