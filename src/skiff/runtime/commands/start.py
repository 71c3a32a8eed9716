"""`start ID`: let a created container's init exec its process."""


def run(opts) -> int:
    from skiff.runtime.launch import start
    start(opts.args[0], opts.root)
    return 0
