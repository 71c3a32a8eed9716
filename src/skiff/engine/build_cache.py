"""The build cache: which image a build step made from a parent image.

    cache = BuildCache("/var/lib/skiff")
    key = cache.key(parent_id, "run", ["/bin/sh", "-c", "make"], content="sha256:...")
    cache.get(key, images)   -> "sha256:..." (an image that still exists) or None
    cache.put(key, image_id)

A step's key is the digest of its parent image id (which stands for everything before it:
layers and config), the instruction with its arguments expanded, and, for COPY/ADD, the
digest of the files' contents (see build/context.py: names, modes and contents, never
timestamps). Each step's result is an image of its own (docker's classic builder makes the
same intermediate images), so the layers and configs a cache entry points at are kept, listed
and removed by the image store like any other image's; an entry whose image was removed is
a miss. Entries are small files (`<root>/build/cache/<hex>` holding the image id) written by
rename, so they survive a daemon restart and a crash never leaves half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

from skiff.errors import NotFound


class BuildCache:
    def __init__(self, root: str):
        self.dir = os.path.join(root, "build", "cache")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    @staticmethod
    def key(parent: str, kind: str, args, content: str = "") -> str:
        text = json.dumps([parent, kind, args, content], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str, images) -> str | None:
        try:
            with open(os.path.join(self.dir, key)) as f:
                image_id = f.read().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            images.get(image_id)
        except NotFound:
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(image_id)
            os.rename(tmp, os.path.join(self.dir, key))
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def entries(self) -> dict[str, str]:
        out = {}
        for name in os.listdir(self.dir):
            if name.startswith(".tmp-"):
                continue
            try:
                with open(os.path.join(self.dir, name)) as f:
                    out[name] = f.read().strip()
            except FileNotFoundError:
                pass
        return out

    def forget(self, key: str) -> None:
        try:
            os.unlink(os.path.join(self.dir, key))
        except FileNotFoundError:
            pass
