"""Pure pieces of `stats`."""

from skiff.engine import stats

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     120       2    0    0    0     0          0         0      120       2    0    0    0     0       0          0
  eth0:    5432      41    1    2    0     0          0         0     1234      12    3    4    0     0       0          0
"""


def test_net_dev_as_dockers_networks():
    assert stats.parse_net_dev(NET_DEV) == {"eth0": {
        "rx_bytes": 5432, "rx_packets": 41, "rx_errors": 1, "rx_dropped": 2,
        "tx_bytes": 1234, "tx_packets": 12, "tx_errors": 3, "tx_dropped": 4}}


def test_no_networks_for_our_own_namespace():
    import os

    assert stats.network_counters(os.getpid()) is None


def test_block_io_from_cgroup_v1():
    text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\n" \
           "Total 12288\n"
    entries = stats._io_bytes_v1(text)
    assert {"major": 8, "minor": 0, "op": "read", "value": 4096} in entries
    assert {"major": 8, "minor": 0, "op": "write", "value": 8192} in entries
    assert len(entries) == 5


def test_block_io_from_cgroup_v2():
    entries = stats._io_bytes("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n")
    assert entries == [{"major": 8, "minor": 0, "op": "read", "value": 4096},
                       {"major": 8, "minor": 0, "op": "write", "value": 8192}]


def test_cli_row_sums_networks_and_block_io():
    from skiff.cli.commands.lifecycle import stats_row

    row = stats_row({
        "id": "0123456789abcdef", "name": "/web",
        "memory_stats": {"usage": 2048, "limit": 4096, "stats": {}},
        "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 500},
                     "eth1": {"rx_bytes": 1000, "tx_bytes": 0}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 4096},
            {"major": 8, "minor": 0, "op": "write", "value": 1000}]},
        "pids_stats": {"current": 3}})
    assert row[:2] == ["0123456789ab", "web"]
    assert row[5] == "2kB / 500B" and row[6] == "4.1kB / 1kB" and row[7] == "3"
