"""The allowlist's matching (pure): exact names, subdomains, ports, addresses — and the
spellings a hostile command would try instead, refused before any connection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.egress.rules import EgressRuleError, EgressRules, Rule, normalise_host

RULES = EgressRules(
    Rule.parse(text, "test")
    for text in ("registry.npmjs.org", "*.pythonhosted.org", "localhost:4873", "10.0.0.5:8081")
)


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("registry.npmjs.org", 443),
        ("REGISTRY.NPMJS.ORG.", 443),  # case and the root's trailing dot: the same name
        ("registry.npmjs.org", 80),
        ("files.pythonhosted.org", 443),
        ("a.b.pythonhosted.org", 443),
        ("localhost", 4873),
        ("127.0.0.1", 4873),  # localhost is 127.0.0.1
        ("[::ffff:127.0.0.1]", 4873),  # an IPv4-mapped address is the IPv4 one
        ("10.0.0.5", 8081),
    ],
)
def test_allowed(host: str, port: int) -> None:
    verdict = RULES.judge(host, port)
    assert verdict.allowed, verdict.reason


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("registry.npmjs.org", 22),  # a port the rule does not name
        ("registry.npmjs.org.evil.example", 443),  # look-alikes
        ("evilregistry.npmjs.org", 443),
        ("pythonhosted.org", 443),  # *.domain is its subdomains, not the domain
        ("104.16.0.1", 443),  # an address where the rules name hosts
        ("2130706433", 4873),  # 127.0.0.1 by other spellings resolvers accept
        ("0x7f.1", 4873),
        ("127.1", 4873),
        ("0177.0.0.1", 4873),
        ("127.0.0.1", 4874),
        ("[::1]", 4873),  # loopback, but not the address the rule names
        ("", 443),
        ("exa mple.com", 443),
        ("a..b", 443),
        ("x" * 64 + ".com", 443),
    ],
)
def test_refused(host: str, port: int) -> None:
    verdict = RULES.judge(host, port)
    assert not verdict.allowed
    assert verdict.reason


def test_a_refusal_says_how_to_allow_the_host() -> None:
    reason = RULES.judge("evil.example", 443).reason
    assert "evil.example:443" in reason and "[agent.egress] allow" in reason


def test_non_ascii_names_match_as_their_idna_form() -> None:
    rules = EgressRules([Rule.parse("bücher.example", "test")])
    assert rules.judge("BÜCHER.example", 443).allowed
    assert rules.judge("xn--bcher-kva.example", 443).allowed
    assert not rules.judge("bucher.example", 443).allowed


def test_a_name_may_not_lead_to_loopback_link_local_or_unspecified_addresses() -> None:
    allowed = RULES.judge("registry.npmjs.org", 443)
    assert RULES.resolved(allowed, ["104.16.1.34", "2606:4700::6810:122"]).allowed
    for rebound in ("127.0.0.1", "::1", "169.254.169.254", "0.0.0.0", "fe80::1%eth0"):
        assert not RULES.resolved(allowed, ["104.16.1.34", rebound]).allowed, rebound
    # A company registry at a private address is reachable by name: the user named it.
    assert RULES.resolved(allowed, ["10.1.2.3"]).allowed
    # A rule naming a loopback address reaches it.
    local = RULES.judge("localhost", 4873)
    assert RULES.resolved(local, ["127.0.0.1"]).allowed


def test_loopback_ports_are_those_rules_name_on_loopback() -> None:
    assert RULES.loopback_ports() == (4873,)
    assert EgressRules([Rule.parse("localhost", "t")]).loopback_ports() == ()  # 80/443: < 1024


@pytest.mark.parametrize(
    "text", ["", "http://registry.npmjs.org", "host:0", "host:70000", "*.10.0.0.1", "a b", "*."]
)
def test_a_rule_that_cannot_mean_anything_is_a_clear_error(text: str) -> None:
    with pytest.raises(EgressRuleError, match=r"name|address|domain"):
        Rule.parse(text, "your config")


def test_rules_print_as_they_are_written() -> None:
    assert [str(r) for r in RULES.rules] == [
        "registry.npmjs.org", "*.pythonhosted.org", "127.0.0.1:4873", "10.0.0.5:8081",
    ]  # fmt: skip
    assert str(Rule.parse("[::1]:8080", "t")) == "[::1]:8080"


@given(st.text(max_size=80), st.integers(min_value=0, max_value=70000))
def test_judging_never_raises_and_only_rules_allow(host: str, port: int) -> None:
    verdict = RULES.judge(host, port)
    if verdict.allowed:
        assert verdict.rule is not None and verdict.rule.matches(normalise_host(host) or "", port)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_no_spelling_of_an_address_passes_for_a_name(number: int) -> None:
    for spelling in (str(number), hex(number)):
        assert normalise_host(spelling) is None
        assert not RULES.judge(spelling, 443).allowed
