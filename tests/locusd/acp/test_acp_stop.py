"""A cancel and a spent budget end an external agent that will not stop: the probe agent
(tests/locusd/acp/probe_agent.py, ``stubborn``) ignores SIGTERM and ``session/cancel``, has a
child and a double-forked ``setsid`` grandchild that ignore SIGTERM, and a terminal command
that ignores it too. When the run's report comes back, none of them runs any more."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locusd.agent.report import Event, RunReport
from locusd.agent.transcript import AcpRecord, read
from tests.locusd.acp.test_acp_south import commandlines, probe_run, running
from tests.locusd.agentkit import make_sample_repo


@dataclass(frozen=True)
class Seen:
    """A process of the agent's tree as the test saw it from outside (the host's /proc)."""

    session: int
    argv: list[str]


def marked(mark: str) -> dict[int, Seen]:
    """The processes with ``mark`` in their command line, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if any(mark.encode() in arg for arg in argv):
            session = int(stat.rsplit(")", 1)[1].split()[3])
            found[int(entry.name)] = Seen(session, [a.decode("utf-8", "replace") for a in argv])
    return found


async def stubborn_run(
    tmp_path: Path, *, calls: int, **agent: Any
) -> tuple[RunReport, dict[int, Seen]]:
    """A run of the stubborn probe agent, and its tree as it was when the agent started its
    first tool call (everything running: the agent waits for them first). ``cancel``: the
    run is cancelled then. As soon as the report is back, none of them may run."""
    mark = f"stubborn-{uuid.uuid4().hex}"
    seen: dict[int, Seen] = {}
    cancel: asyncio.Event | None = agent.get("cancel")

    def watch(event: Event) -> None:
        if event.kind == "tool" and not seen:
            seen.update(marked(mark))
            if cancel is not None:
                cancel.set()

    def ended() -> None:
        assert [pid for pid in seen if running(pid)] == [], "the report came before the kill"
        assert not any(mark.encode() in line for line in commandlines()), "left running"

    report, _ = await probe_run(
        tmp_path,
        make_sample_repo(tmp_path),
        [{"stubborn": mark, "calls": str(calls)}],
        mark=mark,
        watch=watch,
        ended=ended,
        **agent,
    )
    return report, seen


def assert_whole_tree(seen: dict[int, Seen]) -> None:
    """What was seen is the whole tree: the agent, its child, the grandchild (another
    session), the terminal's command."""
    programs = [p.argv[1:3] for p in seen.values() if "python" in Path(p.argv[0]).name]
    assert sum(p[0].endswith("probe_agent.py") for p in programs) == 1, seen
    forked = [p for p in seen.values() if p.argv[1:2] == ["-c"] and "os.setsid()" in p.argv[2]]
    assert len(forked) == 2, seen  # the child, the grandchild
    assert len({p.session for p in forked}) == 2  # the grandchild left the child's session


def sent_to_agent(report: RunReport) -> list[str]:
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    return [str(r.message.get("method")) for r in records if r.direction == "to_agent"]


async def test_a_cancel_kills_an_agent_that_ignores_it_with_its_whole_tree(tmp_path: Path) -> None:
    """``session/cancel`` is sent, the agent ignores it, and its whole tree is killed before
    the run is reported cancelled: no process of it is left, not even the ``setsid``
    grandchild or the terminal's command that ignore SIGTERM."""
    report, seen = await stubborn_run(tmp_path, calls=1, cancel=asyncio.Event())
    assert report.outcome == "cancelled", (report.reason, report.warnings)
    assert "session/cancel" in sent_to_agent(report)
    assert_whole_tree(seen)
    assert [pid for pid in seen if running(pid)] == []


async def test_a_spent_budget_kills_an_agent_that_keeps_going(tmp_path: Path) -> None:
    """The second tool call of a one-turn budget: ``session/cancel``, and the tree killed at
    once (no grace: it would be more spending), before the run is reported
    ``budget_exhausted``."""
    report, seen = await stubborn_run(tmp_path, calls=2, budget={"max_turns": 1})
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max turns" in report.reason
    assert "session/cancel" in sent_to_agent(report)
    assert_whole_tree(seen)
    assert [pid for pid in seen if running(pid)] == []
