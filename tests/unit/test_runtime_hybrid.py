"""runtime/hybrid.py: which hosts get the v1 view."""

from skiff.runtime.hybrid import is_hybrid

HYBRID = """\
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
"""
PURE_V2 = """\
25 22 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
"""
V1_ONLY = """\
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
"""


def test_only_a_hybrid_layout_is_hybrid():
    assert is_hybrid(HYBRID)
    assert not is_hybrid(PURE_V2)
    assert not is_hybrid(V1_ONLY)
    assert not is_hybrid("")
