"""The agent's commands reach the network only through Locus's egress proxy, and only the hosts
the user's policy allows (docs/security.md, "Network").

A sandboxed command lives in a network namespace of its own: only a loopback. Inside it,
:mod:`~locusd.agent.egress.bridge` (a stdlib-only script the sandbox starts before the command)
listens on that loopback and relays each connection over a UNIX socket bound into the sandbox to
:class:`~locusd.agent.egress.proxy.EgressProxy`, which runs outside, in the run's process. The
proxy, not anything inside, decides: :class:`~locusd.agent.egress.rules.EgressRules` (pure) says
whether a host and port may be reached, and every connection — allowed or refused, with the
bytes each way — is recorded in the run's transcript and shown in the review.

- ``rules``: the allowlist and its matching (exact names, ``*.domain``, ports, addresses).
- ``proxy``: the HTTP proxy (``CONNECT`` and plain HTTP) on a UNIX socket.
- ``bridge``: the relay inside the sandbox; sets ``HTTP(S)_PROXY`` for the command.
"""
