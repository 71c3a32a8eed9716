"""Pure pieces of `cp`: argument parsing, where an archive's root lands, Go's file modes."""

from __future__ import annotations

import os
import stat

import pytest

from skiff.cli.commands import cp
from skiff.cli.context import StatusError
from skiff.runtime import fsview


def test_split_target():
    assert cp.split_target("web:/etc/hosts") == ("web", "/etc/hosts")
    assert cp.split_target("/abs/with:colon") == (None, "/abs/with:colon")
    assert cp.split_target("./rel:colon") == (None, "./rel:colon")
    assert cp.split_target("plain") == (None, "plain")
    assert cp.split_target("web:") == ("web", "")


def test_rebase_renames_the_root_only():
    assert cp._rebase("etc", "etc", "conf") == "conf"
    assert cp._rebase("etc/hosts", "etc", "conf") == "conf/hosts"
    assert cp._rebase("etc/hosts", "etc", None) == "etc/hosts"
    assert cp._rebase("./hosts", ".", "") == "hosts"
    assert cp._rebase(".", ".", "") == "."
    assert cp._rebase("etcetera/x", "etc", "conf") == "etcetera/x"


def test_local_destination(tmp_path):
    d = tmp_path / "dir"
    d.mkdir()
    f = tmp_path / "file"
    f.write_text("x")
    is_dir = {"mode": 1 << 31, "name": "etc"}
    is_file = {"mode": 0o644, "name": "hosts"}
    assert cp._local_destination("/etc", is_dir, str(d)) == (str(d), None)
    assert cp._local_destination("/etc/.", is_dir, str(d)) == (str(d), "")
    assert cp._local_destination("/etc", is_dir, str(tmp_path / "new")) == \
        (str(tmp_path), "new")
    assert cp._local_destination("/etc/hosts", is_file, str(f)) == (str(tmp_path), "file")
    with pytest.raises(StatusError, match="cannot copy directory"):
        cp._local_destination("/etc", is_dir, str(f))
    with pytest.raises(StatusError, match="does not exist"):
        cp._local_destination("/etc/hosts", is_file, str(tmp_path / "nodir") + "/")


def test_go_file_modes():
    assert fsview.go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert fsview.go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert fsview.go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert fsview.go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert fsview.go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == \
        (1 << 31) | (1 << 20) | 0o777


def test_in_root_keeps_links_inside(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/etc", root / "abs")            # absolute: the container's /etc
    os.symlink("../../../../..", root / "up")   # climbing: stops at the root
    assert fsview.in_root(str(root), "/abs") == str(root / "etc")
    assert fsview.in_root(str(root), "/up/etc") == str(root / "etc")
    assert fsview.in_root(str(root), "/missing") is None
