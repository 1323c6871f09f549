"""A stand-in ``notify-send`` for tests: a real executable, put first on the daemon's PATH (no
desktop bus can be reached here), that appends what it was given — its argv, the names of its
environment variables, its working directory — as one JSON line to a file."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = """#!{python}
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": sorted(os.environ), "cwd": os.getcwd()}}) + "\\n")
{tail}
"""


@dataclass
class FakeProgram:
    directory: Path
    log: Path

    def calls(self) -> list[dict[str, Any]]:
        """Every call so far, in order."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


def fake_program(where: Path, name: str = "notify-send", tail: str = "") -> FakeProgram:
    """``where/bin/name`` recording its calls in ``where/name.jsonl``; ``tail``: Python run
    after the call is recorded (to fail, or to hang)."""
    directory = where / "bin"
    directory.mkdir(parents=True, exist_ok=True)
    log = where / f"{name}.jsonl"
    program = directory / name
    program.write_text(SCRIPT.format(python=sys.executable, log=str(log), tail=tail))
    program.chmod(0o755)
    return FakeProgram(directory, log)
