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
