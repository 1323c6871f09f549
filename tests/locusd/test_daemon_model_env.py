"""The model variables a client gives with a request (``modelEnv``) are the ones its run uses,
over the daemon's own, and join the scrubber's secret values: the daemon core, a real agent
process and the real OpenAI SDK against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from locusd.daemon import Daemon
from locusd.protocol.errors import LocusError
from locusd.protocol.messages import RunStartParams
from locusd.runner.redact import MASK
from tests.locusd.agentkit import make_config, make_sample_repo, with_identity
from tests.locusd.peers import Client
from tests.support.openai_server import OpenAIServer, Reply

pytestmark = pytest.mark.timeout(120)
SECRET = "local-server-key-with-no-known-shape-4711"


async def test_a_clients_model_variables_run_its_run_and_are_scrubbed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    repo = with_identity(make_sample_repo(tmp_path))
    daemon = Daemon(make_config(tmp_path, provider="openai", model="coder"))
    peer = Client()
    try:
        with pytest.raises(LocusError, match="the openai provider needs a base URL"):
            await daemon.runs_start(RunStartParams(repo=str(repo), task="say hi"), peer)
        # The agent looks at its commands' environment: the key is not there.
        script = [
            Reply(tool_calls=[{"name": "run_command", "arguments": {"command": "env"}}]),
            Reply(content="nothing to change"),
        ]
        async with OpenAIServer(script) as model:
            given = {"OPENAI_BASE_URL": f"{model.base_url}/v1", "OPENAI_API_KEY": SECRET}
            params = RunStartParams(repo=str(repo), task="say hi", model_env=given)
            run = await daemon.runs_start(params, peer)
            await daemon.runs.wait(run.run_id)
        assert model.requests and {r.api_key for r in model.requests} == {SECRET}
        seen = json.dumps(model.requests[1].body)
        assert "PATH=" in seen and SECRET not in seen and "OPENAI_" not in seen
        assert daemon.store.get(run.run_id) is not None
        assert SECRET not in daemon.store.get(run.run_id).model_dump_json()  # type: ignore[union-attr]
        assert daemon._scrubber(repo).text(f"the key is {SECRET}.") == f"the key is {MASK}."
    finally:
        await daemon.close()
