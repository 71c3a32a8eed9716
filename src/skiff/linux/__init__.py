"""Thin ctypes layer over the Linux system calls a container runtime needs.

Owns: mount/umount2/pivot_root (`mount`), unshare/setns and the CLONE_* flags (`ns`), raw
clone and process helpers (`proc`), capabilities (`caps`), prctl switches (`prctl`), seccomp
filters (`seccomp`), bringing `lo` up (`net`), hostnames (`uts`) and ptys (`tty`).

Each function performs one kernel operation and raises `OSError` (with errno set) when the
kernel refuses; none of them decides policy. Pure helpers (mount option parsing, capability
names) sit beside the calls they feed. Nothing here imports from the rest of skiff, and each
submodule is imported on its own so that callers pay only for what they use.
"""
