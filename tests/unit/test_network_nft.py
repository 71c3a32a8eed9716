"""skiff's nft table rendered as a value (applied for real in the integration tests)."""

from skiff.network import nft


def test_render_replaces_the_whole_table_in_one_script():
    script = nft.render("skiff", [nft.BridgeRules("skiff0", "10.88.0.0/16")], [])
    lines = script.splitlines()
    assert lines[:3] == ["table ip skiff {}", "delete table ip skiff", "table ip skiff {"]
    assert '    ip saddr 10.88.0.0/16 oifname != "skiff0" masquerade' in lines
    assert '    oifname "skiff0" ip saddr 127.0.0.0/8 masquerade' in lines


def test_published_ports_with_and_without_host_ip():
    script = nft.render("t", [], [nft.PortRule("tcp", "", 8080, "10.88.0.2", 80),
                                  nft.PortRule("udp", "127.0.0.1", 5353, "10.88.0.3", 53)])
    assert "    tcp dport 8080 dnat to 10.88.0.2:80" in script
    assert "    ip daddr 127.0.0.1 udp dport 5353 dnat to 10.88.0.3:53" in script
    assert "fib daddr type local jump published" in script


def test_internal_networks_have_no_way_out_and_networks_are_isolated():
    script = nft.render("t", [nft.BridgeRules("a", "10.1.0.0/24", internal=True),
                              nft.BridgeRules("b", "10.2.0.0/24")], [])
    assert 'ip saddr 10.1.0.0/24 oifname != "a" masquerade' not in script
    assert '    iifname "a" oifname != "a" drop' in script
    assert '    oifname "a" iifname != "a" drop' in script
    assert '    iifname "a" oifname "b" drop' in script
    assert '    iifname "b" oifname "a" drop' in script


def test_masquerade_can_be_turned_off():
    script = nft.render("t", [nft.BridgeRules("a", "10.1.0.0/24", masquerade=False)], [])
    assert "oifname != \"a\" masquerade" not in script


def test_delete_script_is_idempotent():
    assert nft.delete_script("t") == "table ip t {}\ndelete table ip t\n"
