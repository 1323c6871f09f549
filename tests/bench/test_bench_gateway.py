"""The gateway benchmark runs: every call measured both ways, in order, and metered (no time
is asserted)."""

from __future__ import annotations

import pytest

from bench import gateway


async def test_the_gateway_bench_measures_each_call_both_ways() -> None:
    result = await gateway.measure(3)
    for side in ("direct", "gateway"):
        assert len(result["samples"][side]) == 3
        assert all(0 < s["first_event"] <= s["whole"] for s in result["samples"][side])
    assert result["metered_calls"] == 3
    assert "whole streamed answer" in gateway.render({**result, "seconds": 0})


def test_calls_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        gateway.main(["--calls", "0"])
    assert exited.value.code == 2 and "--calls must be at least 1" in capsys.readouterr().err
