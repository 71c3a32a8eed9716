"""One module per `skiff-runtime` verb; each has `run(opts) -> exit status`."""


def console_fd(path):
    """Connect to runc's --console-socket PATH; return the descriptor (caller closes)."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s.detach()


def write_pid_file(path, pid) -> None:
    import os
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def parse_signal(text: str) -> int:
    import signal
    from skiff.errors import InvalidArgument
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal.Signals, name, None) if name in signal.Signals.__members__ else None
    if sig is None:
        raise InvalidArgument(f"unknown signal {text!r}")
    return int(sig)
