"""`pause ID`: freeze every process of a running container (the freezer cgroup)."""


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.runtime import freezer
    from skiff.runtime import state as st
    doc = st.read(opts.root, opts.args[0])
    if st.status(opts.root, doc) != "running":
        raise RuntimeFailure("container not running")
    freezer.freeze(doc["pid"])
    return 0
