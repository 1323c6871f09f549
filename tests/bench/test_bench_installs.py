"""The install benchmark runs in a tiny mode through the real runner and sandbox, and its
deterministic half holds: the cold run fetches every package file, the pooled run (warm
``vendor/``, ``node_modules``) and the run in a new worktree with warm package caches fetch
none (no timing is asserted)."""

from __future__ import annotations

import argparse

import pytest

from bench import installs
from tests.support.programs import required

pytestmark = pytest.mark.timeout(300)


async def test_the_install_bench_runs_and_warm_runs_fetch_nothing() -> None:
    required("npm", "npm")
    args = argparse.Namespace(rounds=1, packages=2, latency_ms=0.0, json=True, keep=False)
    result = await installs.run(args)
    assert result["notes"] == []
    for ecosystem in ("python", "npm"):
        assert result["fetched"][ecosystem] == {"cold": [2], "pooled": [0], "warm": [0]}
        for situation in installs.SITUATIONS:
            assert result["values"][f"{ecosystem}_{situation}_ms"] > 0
        assert result["values"][f"{ecosystem}_warm_ratio"] > 0
    # pip revalidates each requirement's index page; npm reuses its packuments (fresh 5 min).
    assert result["requests"]["python"] == {"cold": [4], "pooled": [0], "warm": [2]}
    assert result["requests"]["npm"] == {"cold": [4], "pooled": [0], "warm": [0]}


def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, says in (
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--latency-ms", "-1"], "--latency-ms must be 0 or more"),
    ):
        with pytest.raises(SystemExit) as exited:
            installs.parse_args(argv)
        assert exited.value.code == 2 and says in capsys.readouterr().err
