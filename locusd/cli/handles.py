"""The run a handle names (``locus review kqtwbza``, ``locus logs latest``, ``locus cancel 12``),
asked of the daemon, which resolves handles for every client the same way
(``locusd/runner/handles.py``); the commands then speak the whole id."""

from __future__ import annotations

from locusd.cli.rpc import DaemonClient


async def resolved(client: DaemonClient, handle: str | None) -> str:
    """The whole run id for ``handle`` (None: the run awaiting review)."""
    from locusd.protocol.messages import Run, RunHandle

    return (await client.call("locus/runs/resolve", RunHandle(handle=handle), Run)).run_id
