"""Per-container state on disk for the runc-style verbs: `<root>/<id>/state.json` (and
`exec.fifo` between `create` and `start`).

The init's pid is stored with its start time, so a recycled pid is never mistaken for the
container. `status(doc)` gives runc's words: created, running, stopped.
"""

import json
import os

from skiff.errors import Conflict, InvalidArgument, NotFound

DEFAULT_ROOT = "/run/skiff-runtime"
FIFO = "exec.fifo"


def check_id(container_id: str) -> None:
    if (not container_id or "/" in container_id or container_id in (".", "..")
            or "\0" in container_id or len(container_id) > 1024):
        raise InvalidArgument(f"invalid container id {container_id!r}")


def dir_of(root: str, container_id: str) -> str:
    check_id(container_id)
    return os.path.join(root, container_id)


def make_dir(root: str, container_id: str) -> str:
    d = dir_of(root, container_id)
    os.makedirs(root, 0o711, exist_ok=True)
    try:
        os.mkdir(d, 0o711)
    except FileExistsError:
        raise Conflict(f"container with id exists: {container_id}") from None
    return d


def write(root: str, container_id: str, doc: dict) -> None:
    d = dir_of(root, container_id)
    tmp = os.path.join(d, "state.json.tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, os.path.join(d, "state.json"))


def read(root: str, container_id: str) -> dict:
    d = dir_of(root, container_id)
    try:
        with open(os.path.join(d, "state.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        raise NotFound(f"container does not exist: {container_id}") from None


def alive(doc: dict) -> bool:
    from skiff.linux.proc import start_time, state_of
    pid = doc.get("pid")
    if not pid or start_time(pid) != doc.get("pid_start"):
        return False
    return state_of(pid) not in (None, "Z", "X")


def status(root: str, doc: dict) -> str:
    if not alive(doc):
        return "stopped"
    if os.path.exists(os.path.join(root, doc["id"], FIFO)):
        return "created"
    return "running"


def remove(root: str, container_id: str) -> None:
    d = dir_of(root, container_id)
    for name in ("state.json", "state.json.tmp", FIFO):
        try:
            os.unlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass


def list_ids(root: str) -> list:
    try:
        return sorted(os.listdir(root))
    except FileNotFoundError:
        return []
