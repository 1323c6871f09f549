"""README's first command: `locus demo`, the whole trip on embedded defaults, run as a user runs
it (no model key, no config, no account), ends with the task in `verification`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.shortpath import short_tmp

LOCUS = str(Path(sys.executable).parent / "locus")


@pytest.mark.timeout(300)
def test_the_demo_takes_a_task_from_the_cloud_to_verification() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "LOCUS"))}
    # Its socket lives in --dir: a short one, whatever $TMPDIR is.
    with short_tmp() as where:
        done = subprocess.run(
            [LOCUS, "demo", "--dir", str(where / "demo")],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
        socket_left = (where / "demo" / "run" / "locusd.sock").exists()
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert "replaying a recorded session" in text  # announced, never passed off as a model
    assert "+        return (ordered[middle - 1] + ordered[middle]) / 2" in text
    assert "is verification" in text
    assert not socket_left  # it cleaned up after itself: no daemon socket, the cloud stopped
