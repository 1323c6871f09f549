"""The CLI's protocol client (``locusd/cli/rpc.py``) against the real daemon: a call its caller
gave up on (Ctrl-C, a timeout) leaves the connection usable for the next ones."""

from __future__ import annotations

import asyncio

from locusd.cli.rpc import DaemonClient
from tests.locusd import daemonmachine
from tests.locusd.daemonmachine import Machine, serving

machine = daemonmachine.machine


async def test_an_answer_to_a_cancelled_call_does_not_stop_the_client(machine: Machine) -> None:
    async with serving(machine):
        reader, writer = await asyncio.open_unix_connection(str(machine.socket))
        async with DaemonClient(reader, writer) as client:
            given_up = asyncio.create_task(client.call_wire("locus/daemon/status"))
            await asyncio.sleep(0)  # sent; its answer is still on the way
            given_up.cancel()
            await asyncio.gather(given_up, return_exceptions=True)
            status = await asyncio.wait_for(client.call_wire("locus/daemon/status"), 30)
            again = await asyncio.wait_for(client.call_wire("locus/daemon/status"), 30)
    assert status["version"] and again["version"] == status["version"]
