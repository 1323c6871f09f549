"""README's first command: `locus demo`, the whole trip on embedded defaults, run as a user runs
it (no model key, no config, no account), ends with the task in `verification`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.shortpath import short_tmp

LOCUS = str(Path(sys.executable).parent / "locus")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("as_json", [False, True], ids=["for-people", "json"])
def test_the_demo_takes_a_task_from_the_cloud_to_verification(as_json: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "LOCUS"))}
    # Its socket lives in --dir: a short one, whatever $TMPDIR is.
    with short_tmp() as where:
        done = subprocess.run(
            [LOCUS, "demo", "--dir", str(where / "demo"), *(["--json"] if as_json else [])],
            env={**env, "COLUMNS": "30"},  # never wrapped to it: piped output is whole lines
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
        socket_left = (where / "demo" / "run" / "locusd.sock").exists()
    assert done.returncode == 0, done.stdout + done.stderr
    # With --json the steps go to stderr, and stdout is what the trip made.
    text = done.stderr if as_json else done.stdout
    if as_json:
        made = json.loads(done.stdout)
        assert made["taskStatus"] == "verification" and len(made["commit"]) == 40
        assert made["runId"] in text
    assert "replaying a recorded session" in text  # announced, never passed off as a model
    assert "+        return (ordered[middle - 1] + ordered[middle]) / 2" in text
    assert "is verification" in text
    assert not socket_left  # it cleaned up after itself: no daemon socket, the cloud stopped
