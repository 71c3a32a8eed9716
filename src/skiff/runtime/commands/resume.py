"""`resume ID`: thaw a paused container."""


def run(opts) -> int:
    from skiff.errors import RuntimeFailure
    from skiff.runtime import freezer
    from skiff.runtime import state as st
    doc = st.read(opts.root, opts.args[0])
    if st.status(opts.root, doc) not in ("running", "paused"):
        raise RuntimeFailure("container not running")
    freezer.thaw(doc["pid"])
    return 0
