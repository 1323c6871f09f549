"""Running one benchmark suite as its user would (``python -m bench.<name> --json …``) and
reading its result: the checks every bench test shares."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_suite(name: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """The suite's ``--json`` result, once its exit code says what a bench's exit code must: 0
    when every bar passed, 1 for a MISS (not a failure), nothing else."""
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if result["passed"] else 1)
    return result
