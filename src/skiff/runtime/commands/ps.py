"""`ps [--format table|json] ID [PS_ARGS...]`: the processes of a container (its cgroup's):
a JSON list of host pids, or the host's `ps` output restricted to them (runc's ps)."""

import json
import subprocess
import sys


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.runtime import freezer
    from skiff.runtime import state as st
    doc = st.read(opts.root, opts.args[0])
    if st.status(opts.root, doc) == "stopped":
        raise RuntimeFailure("container not running")
    pids = freezer.pids(doc["pid"])
    if opts.format == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    out = subprocess.run(["ps", *(opts.args[1:] or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeFailure(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    titles = lines[0].split() if lines else []
    if "PID" not in titles:
        raise RuntimeFailure("couldn't find PID field in ps output")
    index = titles.index("PID")
    keep = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > index and fields[index].isdigit() and int(fields[index]) in keep:
            sys.stdout.write(line + "\n")
    return 0
