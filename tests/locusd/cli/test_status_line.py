"""``locus status``'s sandbox line says how commands reach the network, in each case."""

from __future__ import annotations

from locusd.cli.status import sandbox_line


def test_the_sandbox_line_names_the_network_policy() -> None:
    base = {"contained": True, "network": False, "warning": None}
    assert sandbox_line({**base, "egress": "none"}) == "sandbox: bubblewrap, no network"
    assert sandbox_line({**base, "network": True, "egress": "open"}) == (
        "sandbox: bubblewrap, the whole network (allow_network)"
    )
    proxy = sandbox_line({**base, "egress": "proxy", "egress_hosts": ["localhost:4873"]})
    assert proxy == (
        "sandbox: bubblewrap, network through the egress proxy: the repository's registries"
        " and localhost:4873"
    )
    bare = {"contained": False, "network": False, "warning": "bwrap is not installed"}
    assert sandbox_line(bare) == "sandbox: NOT CONTAINED — bwrap is not installed"
