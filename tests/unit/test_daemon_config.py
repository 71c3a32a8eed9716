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
                              log_driver="json-file", debug=False, pidfile=None, host=None)
    defaults = {"root": "/var/lib/skiff", "exec_root": "/run/skiff", "cgroup_parent": "skiff",
                "log_driver": "json-file", "debug": False, "pidfile": None, "host": None}
    config.merge(args, config.load(str(path)), defaults)
    assert args.root == "/srv/skiff" and args.exec_root == "/custom"
    assert args.host == ["unix:///tmp/x.sock"] and args.log_opts == {"max-size": "10m"}


def test_daemon_json_hosts_and_tls(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"hosts": ["unix:///tmp/a.sock", "tcp://127.0.0.1:2376"],
                                "tlsverify": True, "tlscacert": "/ca.pem",
                                "tlscert": "/cert.pem", "tlskey": "/key.pem"}))
    args = argparse.Namespace(root="/r", exec_root="/e", cgroup_parent="skiff",
                              log_driver="json-file", debug=False, pidfile=None,
                              host=["unix:///flag.sock"], tls=False, tlsverify=False,
                              tlscacert=None, tlscert="/flag-cert.pem", tlskey=None)
    config.merge(args, config.load(str(path)), {"host": None})
    assert args.host == ["unix:///flag.sock"]          # the flag wins over the file
    assert args.tlsverify is True and args.tlscacert == "/ca.pem"
    assert args.tlscert == "/flag-cert.pem" and args.tlskey == "/key.pem"
    path.write_text(json.dumps({"hosts": "unix:///x.sock"}))
    with pytest.raises(config.ConfigError, match="hosts must be a list"):
        config.load(str(path))


def test_tcp_listener_needs_client_verification():
    from skiff.api import tls

    with pytest.raises(tls.ListenerError, match="without TLS client verification"):
        tls.require_for_tcp("tcp://0.0.0.0:2376", False, "/ca", "/c", "/k")
    with pytest.raises(tls.ListenerError, match="without TLS client verification"):
        tls.require_for_tcp("tcp://0.0.0.0:2376", True, None, "/c", "/k")
    assert tls.require_for_tcp("tcp://x:1", True, "/ca", "/c", "/k").cacert == "/ca"
    assert tls.parse_tcp("tcp://127.0.0.1:2376") == ("127.0.0.1", 2376)
    assert tls.parse_tcp("tcp://:2376") == ("0.0.0.0", 2376)
    assert tls.parse_tcp("tcp://[::1]:9") == ("::1", 9)
    assert tls.parse_tcp("tcp://host") == ("host", 2376)
    with pytest.raises(tls.ListenerError):
        tls.parse_tcp("tcp://host:99999")


def test_client_tls_options_and_defaults(tmp_path):
    from skiff.client import tls

    assert tls.from_options(False, False, None, None, None, environ={}) is None
    (tmp_path / "ca.pem").write_text("x")
    (tmp_path / "cert.pem").write_text("x")
    env = {"SKIFF_CERT_PATH": str(tmp_path), "SKIFF_TLS_VERIFY": "1"}
    found = tls.from_options(False, False, None, None, None, environ=env)
    assert found.verify and found.cacert == str(tmp_path / "ca.pem")
    assert found.cert == str(tmp_path / "cert.pem") and found.key is None
    plain = tls.from_options(True, False, None, None, "/k", environ={})
    assert not plain.verify and plain.key == "/k"


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


def test_daemon_json_network_settings(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"bridge": "br-test", "bip": "10.99.0.1/24",
                                "iptables": False,
                                "default-address-pools": [{"base": "10.100.0.0/16",
                                                           "size": 24}]}))
    defaults = {"bridge": "skiff0", "bip": "10.88.0.1/16", "iptables": True}
    args = argparse.Namespace(root="/r", exec_root="/e", cgroup_parent="skiff",
                              log_driver="json-file", debug=False, pidfile=None, host=None,
                              bridge="skiff0", bip="10.77.0.1/24", iptables=True,
                              default_address_pool=None)
    config.merge(args, config.load(str(path)), defaults)
    assert args.bridge == "br-test" and args.iptables is False
    assert args.bip == "10.77.0.1/24"                    # the flag was given: it wins
    assert args.default_address_pool == ["base=10.100.0.0/16,size=24"]
    path.write_text(json.dumps({"default-address-pools": [{"base": "10.1.0.0/16"}]}))
    args.default_address_pool = None
    with pytest.raises(config.ConfigError, match="default-address-pools"):
        config.merge(args, config.load(str(path)), defaults)


def test_log_opt_flags_win_over_the_file(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps({"log-opts": {"max-size": "10m", "max-file": "3"}}))
    args = argparse.Namespace(root="/r", exec_root="/e", cgroup_parent="skiff",
                              log_driver="json-file", debug=False, pidfile=None, host=None,
                              log_opt=["max-size=1m"])
    config.merge(args, config.load(str(path)), {})
    assert args.log_opts == {"max-size": "1m", "max-file": "3"}
    args.log_opt = ["nonsense"]
    with pytest.raises(config.ConfigError, match="KEY=VALUE"):
        config.merge(args, config.load(str(path)), {})
