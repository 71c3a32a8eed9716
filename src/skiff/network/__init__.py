"""network/: container networking below the engine: address management (ipam), network
namespace files (netns), links and addresses through netlink (links, with pyroute2), the
nftables ruleset of skiff's own table (nft), and the embedded DNS server (dns).

Knows networks and endpoints as plain values (subnets, addresses, names); knows nothing of
containers' lifecycle, records or the API. May import skiff.linux and the top-level helpers
only (never engine/, api/ or cli/).
"""
