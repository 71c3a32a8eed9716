"""`state ID`: runc's JSON (ociVersion, id, status, pid, bundle, rootfs, created, owner)."""

import json
import sys


def describe(root, cid) -> dict:
    from skiff.runtime import state as st
    doc = st.read(root, cid)
    status = st.status(root, doc)
    out = {"ociVersion": doc.get("ociVersion", "1.0.2"), "id": cid,
           "pid": doc.get("pid", 0) if status != "stopped" else 0, "status": status,
           "bundle": doc.get("bundle", ""), "rootfs": doc.get("rootfs", ""),
           "created": doc.get("created", ""), "owner": ""}
    if doc.get("annotations"):
        out["annotations"] = doc["annotations"]
    return out


def run(opts) -> int:
    sys.stdout.write(json.dumps(describe(opts.root, opts.args[0]), indent=2) + "\n")
    return 0
