"""Which hosts the agent's commands may reach: the allowlist and its matching. Pure logic.

A rule is a host name (``registry.npmjs.org``), a domain's subdomains (``*.example.com``, not
``example.com`` itself), or an address (``10.0.0.5``, ``[::1]``), each with an optional port
(``:4873``); without one, the web's ports 80 and 443. ``localhost`` is ``127.0.0.1``.

Matching is exact, on a normalised name: lower case, no trailing dot, IDNA for non-ASCII.
What a hostile command might try instead is refused here, before any connection:

- an address where the rule names a host (``CONNECT 104.16.0.1:443``), and any of the legacy
  numeric spellings of an address that resolvers accept (``2130706433``, ``0x7f.1``);
- a look-alike name (``registry.npmjs.org.evil.example``, ``evilregistry.npmjs.org`` against
  an exact rule), an empty or malformed one, a port the rule does not name;
- and, after resolution (:meth:`EgressRules.resolved`), an allowed *name* whose address is
  loopback, link-local (a cloud's metadata service) or unspecified: only a rule naming such an
  address itself reaches it. Private ranges stay reachable by name: a company's registry lives
  there, and the user named it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

#: Ports a rule without one allows: the web's.
WEB_PORTS = (80, 443)
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_RULE = re.compile(r"^(?P<host>\[[^\]]+\]|[^:\s]+|[0-9a-fA-F:]+)(?::(?P<port>\d{1,5}))?$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRuleError(ValueError):
    """A rule the user wrote that cannot mean anything: says which and how to write it."""


def _address(text: str) -> Address | None:
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped
    return found


def normalise_host(text: str) -> str | None:
    """The host as rules are matched: a canonical address, or a lower-case ASCII name with no
    trailing dot; None when it is neither (or a numeric spelling of an address in disguise)."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    address = _address(host)
    if address is not None:
        return str(address)
    host = host.rstrip(".").lower()
    if host == "localhost":
        return "127.0.0.1"
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        return None
    try:
        socket.inet_aton(host)  # "2130706433", "0x7f.1", "127.1": an address by another name
    except OSError:
        return host
    return None


@dataclass(frozen=True)
class Rule:
    host: str  # a normalised name or address, or "*." and a normalised domain
    ports: tuple[int, ...]
    why: str  # where the rule comes from: shown with each connection it allows

    @classmethod
    def parse(cls, text: str, why: str) -> Rule:
        match = _RULE.match(text.strip())
        wildcard = text.strip().startswith("*.")
        host = match["host"] if match else ""
        normal = normalise_host(host[2:] if wildcard else host)
        port = int(match["port"]) if match and match["port"] else None
        if not match or normal is None or (port is not None and not 0 < port < 65536):
            raise EgressRuleError(
                f"{text!r} is not a host to allow: write a name (registry.npmjs.org), a domain's"
                " subdomains (*.example.com) or an address (10.0.0.5, [::1]), optionally with"
                " :port (localhost:4873)"
            )
        if wildcard and _address(normal) is not None:
            raise EgressRuleError(f"{text!r}: a wildcard takes a domain, not an address")
        return cls(f"*.{normal}" if wildcard else normal, (port,) if port else WEB_PORTS, why)

    def matches(self, host: str, port: int) -> bool:
        if port not in self.ports:
            return False
        if self.host.startswith("*."):
            return _address(host) is None and host.endswith(self.host[1:])
        return host == self.host

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.ports == WEB_PORTS else f"{host}:{self.ports[0]}"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    rule: Rule | None = None


def _special(address: Address) -> bool:
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or (address.is_multicast)
    )


class EgressRules:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    def judge(self, host: str, port: int) -> Verdict:
        """Whether ``host:port`` (as a command asked for it) may be reached, and why."""
        normal = normalise_host(host)
        if normal is None:
            return Verdict(False, f"{host!r} is not a host name or an address")
        for rule in self.rules:
            if rule.matches(normal, port):
                return Verdict(True, f"allowed by {rule} ({rule.why})", rule)
        hint = "add it to [agent.egress] allow in your Locus config if the agent needs it"
        return Verdict(False, f"{normal}:{port} is not on the allowlist: {hint}")

    def resolved(self, verdict: Verdict, addresses: Iterable[str]) -> Verdict:
        """The verdict once the name's addresses are known: a name may not lead to loopback,
        link-local or unspecified addresses unless the rule names that address itself."""
        rule = verdict.rule
        if rule is None or _address(rule.host) is not None:
            return verdict
        for text in addresses:
            address = _address(text.split("%", 1)[0])
            if address is None or _special(address):
                return Verdict(
                    False,
                    f"{rule} resolves to {text}, a loopback, link-local or unspecified address;"
                    " allow that address itself if it is meant",
                )
        return verdict

    def loopback_ports(self) -> tuple[int, ...]:
        """Ports of the host's loopback that rules name: the bridge listens on these inside the
        sandbox (whose own loopback is empty), so ``localhost:4873`` works as it does outside.
        Ports below 1024 cannot be listened on there."""
        found = {
            port
            for rule in self.rules
            if (address := _address(rule.host)) is not None and address.is_loopback
            for port in rule.ports
            if port >= 1024
        }
        return tuple(sorted(found))
