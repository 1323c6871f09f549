"""Through the real CLI and daemon (a detached process) against a real cloud, the agent's
command reports from inside that it ran in a PID and a network namespace of its own, unable
to reach the model server the daemon talks to."""

from __future__ import annotations

import json

import pytest

from locusd.cli.common import NEEDS_INPUT
from tests.conftest import Cloud
from tests.locusd.cliuser import User, login_and_queue
from tests.locusd.sandboxproof import assert_sandboxed, probed, probing_model

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]


async def test_a_daemon_runs_commands_in_the_sandbox(user: User, cloud: Cloud) -> None:
    async with probing_model() as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        await login_and_queue(user, cloud)
        args = ("run", "--once", "--repo", str(user.repo), "--json")
        code, out, err = await user.locus(*args, check=False)
    (run,) = json.loads(out)
    assert run["state"] == "needs_input" and code == NEEDS_INPUT, err
    assert_sandboxed(probed(model))
