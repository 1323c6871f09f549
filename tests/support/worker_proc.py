"""A minimal worker process for crash tests: claim one task, print the claim, heartbeat forever.

The test kills it with SIGKILL mid-lease, as a crashed laptop would be."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def main(base_url: str, token: str, interval: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url, headers=headers) as session:
        async with session.post("/api/v1/worker/claim", json={"wait_seconds": 30}) as resp:
            claim = await resp.json()
        print(json.dumps(claim), flush=True)
        fence = {"attempt": claim["attempt"], "claim_token": claim["claim_token"]}
        url = f"/api/v1/worker/tasks/{claim['task']['id']}/heartbeat"
        while True:
            async with session.post(url, json=fence) as resp:
                resp.raise_for_status()
            await asyncio.sleep(interval)  # a real heartbeat period, not synchronisation


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
