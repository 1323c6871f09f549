"""What the model gateway adds to each model call (``python -m bench.gateway [--calls N]
[--json]``).

The same streamed Anthropic call (a 4 000-character answer in 50 text deltas, from the loopback
server) made N times each way, alternating so load drifts hit both: **direct** (an aiohttp
client to the server's TCP port) and **through the gateway** (the same client on the gateway's
UNIX socket: the gateway forwards to the server, streams the answer back and reads its usage
on the way, as in a run). Two moments per call, from the request: the first event
(``message_start``) and the whole answer. Medians, the gateway minus direct and the ratio, each
the median over pairs of calls made back to back. In a run the agent's calls also cross the
sandbox's relay and the egress proxy, which are there with or without the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import finish, machine
from locusd.agent.external.gateway import ModelCall, ModelGateway
from tests.support.anthropic_server import AnthropicServer, Reply, text

BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1000,
    "stream": True,
    "messages": [{"role": "user", "content": "bench"}],
}
HEADERS = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}
MOMENTS = ("first_event", "whole")


async def one_call(client: aiohttp.ClientSession, url: str) -> dict[str, float]:
    started = time.perf_counter()
    async with client.post(url, json=BODY, headers=HEADERS) as answer:
        answer.raise_for_status()
        await answer.content.readuntil(b"\n\n")
        first = time.perf_counter() - started
        await answer.read()
    return {"first_event": first, "whole": time.perf_counter() - started}


async def measure(calls: int) -> dict[str, Any]:
    metered: list[ModelCall] = []
    direct: list[dict[str, float]] = []
    gated: list[dict[str, float]] = []
    server = AnthropicServer(lambda body: Reply([text("x" * 4000)]), chunks=50)
    # Under /tmp: a UNIX socket path must be short.
    with tempfile.TemporaryDirectory(prefix="locus-bench-gw-", dir="/tmp") as tmp:
        served = Path(tmp) / "gateway.sock"
        async with (
            server,
            ModelGateway(server.base_url, served, metered.append),
            aiohttp.ClientSession() as plain,
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(str(served))) as via,
        ):
            for _ in range(calls):
                direct.append(await one_call(plain, f"{server.base_url}/v1/messages"))
                gated.append(await one_call(via, "http://gateway/v1/messages"))
    pairs = list(zip(direct, gated, strict=True))

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 3)

    return {
        "machine": machine(),
        "calls": calls,
        "direct_ms": {k: ms([d[k] for d in direct]) for k in MOMENTS},
        "gateway_ms": {k: ms([g[k] for g in gated]) for k in MOMENTS},
        "added_ms": {k: ms([g[k] - d[k] for d, g in pairs]) for k in MOMENTS},
        "ratio": {k: round(statistics.median(g[k] / d[k] for d, g in pairs), 2) for k in MOMENTS},
        "metered_calls": sum(1 for call in metered if call.usage is not None),
        "samples": {"direct": direct, "gateway": gated},
    }


def render(result: dict[str, Any]) -> str:
    labels = {"first_event": "first event (message_start)", "whole": "whole streamed answer"}
    rows = [f"{'':<30}{'direct':>10}{'gateway':>10}{'added':>10}{'ratio':>8}"]
    for key in MOMENTS:
        rows.append(
            f"{labels[key]:<30}{result['direct_ms'][key]:>8.2f}ms{result['gateway_ms'][key]:>8.2f}ms"
            f"{result['added_ms'][key]:>+8.2f}ms{result['ratio'][key]:>8.2f}"
        )
    rows += [
        f"median of {result['calls']} calls each way; added and ratio: median per pair",
        f"calls whose usage the gateway read: {result['metered_calls']} of {result['calls']}",
        f"load average {result['machine']['load_start']} at the start",
    ]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="calls each way")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    started = time.monotonic()
    result = asyncio.run(measure(args.calls))
    result.update(seconds=round(time.monotonic() - started, 1), passed=True)
    return finish(result, args.json, render)


if __name__ == "__main__":
    sys.exit(main())
