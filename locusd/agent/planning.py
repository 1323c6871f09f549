"""A planning run (``locus plan "…"``): the built-in loop with a read-only tool set, reading
the code locally and ending with ``propose_tasks``, whose input is the run's result.

Read-only means no tool that writes or runs anything: ``read_file``, ``list_files`` and
``search`` read through the workspace's confined open (never outside the worktree, never
``.git/``); no ``run_command``, not even one the policy would call read-only — a command's
side effects cannot be bounded as a file read can, and planning needs none. The run's
proposals are data for a person to accept or skip; nothing leaves the machine until then.
"""

from __future__ import annotations

from pydantic import Field

from locusd.agent.tools import Stop, ToolResult, Workspace, _Input, tool
from locusd.agent.transcript import MAX_PROPOSALS, Proposal

PROPOSE = "propose_tasks"
#: What a planning run may call: reading, and its one way to end.
PLANNING_TOOLS = frozenset({"read_file", "list_files", "search", PROPOSE})

SYSTEM_PROMPT = """\
You are Locus, planning work on the user's repository: you do not change anything. Read the \
code with the tools (read_file, list_files, search) to understand what the user's goal needs, \
then call propose_tasks once with a few well-scoped tasks: each small enough for one agent \
run, with a one-line title, a description saying what to do and how to tell it is done, and \
the files it will likely touch (paths relative to the repository root). Tool calls that would \
edit a file or run a command do not exist here. Paths are relative to the repository root; you \
cannot leave it, and .git/ is off limits."""

NUDGE = "Read what you need with the tools, then call propose_tasks with your proposals."


class ProposeTasks(_Input):
    proposals: list[Proposal] = Field(
        min_length=1,
        max_length=MAX_PROPOSALS,
        description="the tasks you propose, most important first",
    )


@tool(
    PROPOSE,
    "End the planning run with the tasks you propose (the user accepts or skips each). "
    f"1 to {MAX_PROPOSALS} tasks; a title (one line, at most 200 characters), a description "
    "(at most 4000) and likely_files (at most 20 paths) each.",
    ProposeTasks,
)
async def propose_tasks(ws: Workspace, args: ProposeTasks) -> ToolResult:
    count = len(args.proposals)
    return ToolResult(
        f"{count} task{'s' if count > 1 else ''} proposed",
        stop=Stop("completed", proposals=tuple(args.proposals)),
    )


def planning_goal(goal: str) -> str:
    """The first message of a planning run."""
    return f"Plan this goal as tasks (read the code; change nothing):\n\n{goal}"
