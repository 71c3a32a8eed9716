import argparse
import json

import pytest

from skiff.api import config
from skiff.engine.containers import log_config
from skiff.errors import InvalidArgument
from skiff.monitor.logfile import JsonFileLog, parse_size


def test_daemon_json_fills_what_flags_left(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"data-root": "/srv/skiff", "log-opts": {"max-size": "10m"},
                                "hosts": ["unix:///tmp/x.sock"]}))
    args = argparse.Namespace(root="/var/lib/skiff", exec_root="/custom", cgroup_parent="skiff",
                              log_driver="json-file", debug=False, pidfile=None,
                              host="unix:///run/skiff/skiff.sock")
    defaults = {"root": "/var/lib/skiff", "exec_root": "/run/skiff", "cgroup_parent": "skiff",
                "log_driver": "json-file", "debug": False, "pidfile": None,
                "host": "unix:///run/skiff/skiff.sock"}
    config.merge(args, config.load(str(path)), defaults)
    assert args.root == "/srv/skiff" and args.exec_root == "/custom"
    assert args.host == "unix:///tmp/x.sock" and args.log_opts == {"max-size": "10m"}


def test_daemon_json_refuses_unknown_keys(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"data-rot": "/x"}')
    with pytest.raises(config.ConfigError, match="data-rot"):
        config.load(str(path))
    path.write_text("{not json")
    with pytest.raises(config.ConfigError, match="invalid JSON"):
        config.load(str(path))


def test_log_config_checks():
    assert log_config({}) == {"Type": "json-file", "Config": {}}
    assert log_config({}, "json-file", {"max-size": "1m"})["Config"] == {"max-size": "1m"}
    with pytest.raises(InvalidArgument, match="unknown log opt"):
        log_config({"LogConfig": {"Type": "json-file", "Config": {"colour": "red"}}})
    with pytest.raises(InvalidArgument, match="less than 1"):
        log_config({"LogConfig": {"Type": "json-file", "Config": {"max-file": "0"}}})
    with pytest.raises(InvalidArgument, match="no log driver"):
        log_config({"LogConfig": {"Type": "gelf"}})


def test_sizes():
    assert parse_size("10m") == 10 << 20 and parse_size("1K") == 1024
    assert parse_size("2048") == 2048
    with pytest.raises(ValueError):
        parse_size("lots")


def test_rotation_keeps_whole_records(tmp_path):
    path = str(tmp_path / "c-json.log")
    log = JsonFileLog(path, max_size=300, max_files=2)
    for i in range(50):
        log.write(1, f"line{i}\n".encode())
    log.close()
    for name in (path, path + ".1"):
        text = open(name).read()
        assert len(text) <= 300 and text.endswith("\n")
        assert all(json.loads(line)["log"].startswith("line") for line in text.splitlines())
    assert not (tmp_path / "c-json.log.2").exists()
