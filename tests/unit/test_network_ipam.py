"""Address management as values: pools, subnets, addresses, MACs."""

import ipaddress

import pytest

from skiff.errors import Forbidden, InvalidArgument
from skiff.network import ipam


def net(text):
    return ipaddress.ip_network(text)


def test_default_pools_stay_clear_of_dockers():
    docker = [net("172.17.0.0/16"), net("172.18.0.0/16"), net("192.168.0.0/16")]
    assert not ipam.overlaps(ipaddress.ip_interface(ipam.DEFAULT_BRIDGE_CIDR).network, docker)
    for pool in ipam.parse_pools(ipam.DEFAULT_POOLS):
        assert not ipam.overlaps(pool.base, docker)


def test_pool_parsing_and_errors():
    pool = ipam.parse_pool("base=10.10.0.0/16,size=24")
    assert pool.base == net("10.10.0.0/16") and pool.size == 24
    with pytest.raises(InvalidArgument):
        ipam.parse_pool("size=24")
    with pytest.raises(InvalidArgument):
        ipam.parse_pool("base=10.10.0.0/16,size=8")


def test_next_subnet_skips_taken_and_routed():
    pools = ipam.parse_pools(["base=10.10.0.0/22,size=24"])
    assert ipam.next_subnet(pools, []) == net("10.10.0.0/24")
    assert ipam.next_subnet(pools, [net("10.10.0.0/24"), net("10.10.1.128/25")]) == \
        net("10.10.2.0/24")
    with pytest.raises(Forbidden, match="fully subnetted"):
        ipam.next_subnet(pools, [net("10.10.0.0/22")])


def test_config_checks_gateway_and_range():
    config = ipam.ipam_config({"Subnet": "10.5.0.0/24"})
    assert str(config.gateway) == "10.5.0.1"
    assert config.to_wire() == {"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}
    config = ipam.ipam_config({"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.254",
                               "IPRange": "10.5.0.128/25"})
    assert config.to_wire()["IPRange"] == "10.5.0.128/25"
    with pytest.raises(InvalidArgument, match="no matching subnet for gateway"):
        ipam.ipam_config({"Subnet": "10.5.0.0/24", "Gateway": "10.6.0.1"})
    with pytest.raises(InvalidArgument, match="not within"):
        ipam.ipam_config({"Subnet": "10.5.0.0/24", "IPRange": "10.6.0.0/25"})
    with pytest.raises(InvalidArgument, match="invalid CIDR"):
        ipam.ipam_config({"Subnet": "10.5.0.300/24"})


def test_next_address_lowest_free_never_gateway_or_broadcast():
    config = ipam.ipam_config({"Subnet": "10.5.0.0/29"})
    assert str(ipam.next_address(config, [])) == "10.5.0.2"
    assert str(ipam.next_address(config, ["10.5.0.2", "10.5.0.3"])) == "10.5.0.4"
    used = [f"10.5.0.{i}" for i in range(2, 7)]
    with pytest.raises(Forbidden, match="no available IPv4 addresses"):
        ipam.next_address(config, used)   # .7 is the broadcast address


def test_next_address_within_the_range():
    config = ipam.ipam_config({"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.128/26"})
    assert str(ipam.next_address(config, [])) == "10.5.0.129"


def test_static_addresses():
    config = ipam.ipam_config({"Subnet": "10.5.0.0/24"})
    ipam.check_static_address(config, ipaddress.ip_address("10.5.0.9"), ["10.5.0.2"])
    with pytest.raises(Forbidden, match="Address already in use"):
        ipam.check_static_address(config, ipaddress.ip_address("10.5.0.2"), ["10.5.0.2"])
    with pytest.raises(Forbidden):
        ipam.check_static_address(config, ipaddress.ip_address("10.5.0.1"), [])
    with pytest.raises(InvalidArgument, match="contain the IP address"):
        ipam.check_static_address(config, ipaddress.ip_address("10.6.0.9"), [])


def test_mac_follows_the_address_and_mac_parsing():
    assert ipam.mac_for(ipaddress.ip_address("10.88.0.2")) == "02:42:0a:58:00:02"
    assert ipam.parse_mac("92-D0-C6-0A-29-33") == "92:d0:c6:0a:29:33"
    with pytest.raises(InvalidArgument):
        ipam.parse_mac("92:d0:c6")
