"""Detach keys (`ctrl-p,ctrl-q`): parsing them and spotting them in a stdin stream. Both the
daemon (which detaches a client when it types them) and the CLI use this."""

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def detach_sequence(keys: str) -> bytes:
    """`ctrl-p,ctrl-q` -> b"\\x10\\x11"; single characters stand for themselves."""
    out = bytearray()
    for key in keys.split(","):
        key = key.strip()
        lower = key.lower()
        if lower.startswith("ctrl-") and len(key) == 6:
            ch = lower[5]
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
            elif ch in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[ch])
            else:
                raise ValueError(f"Unknown character: '{key}'")
        elif len(key) == 1:
            out.append(ord(key))
        else:
            raise ValueError(f"Unknown character: '{key}'")
    return bytes(out)


class EscapeDetector:
    """Watches stdin for the detach sequence, holding back a partial match (docker's
    EscapeProxy). `feed` -> (bytes to send, detached?)."""

    def __init__(self, sequence: bytes):
        self.sequence = sequence
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.sequence:
            return data, False
        out = bytearray()
        for byte in data:
            candidate = self.held + bytes([byte])
            if self.sequence.startswith(candidate):
                if candidate == self.sequence:
                    return bytes(out), True
                self.held = candidate
                continue
            out += candidate
            self.held = b""
        return bytes(out), False
