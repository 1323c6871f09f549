"""No branch litter, through the daemon on real repositories: however a run ends — failed,
cancelled, completed without changes, awaiting review then discarded — the user's
``git branch --list 'locus/*'`` stays empty; until the user decides, the run's work is
reachable under ``refs/locus/runs/<run-id>``; an accepted commit gets its branch; a pooled
worktree is renamed for the run that takes it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from locusd.agent.policy import CommandPolicy
from locusd.daemon import Daemon
from locusd.git.worktrees import branch_name
from locusd.protocol.errors import LocusError
from locusd.protocol.messages import (
    ApprovalAnswer,
    ApprovalRequest,
    ReviewParams,
    Run,
    RunCancelParams,
    RunRef,
    RunStartParams,
)
from tests.locusd.agentkit import (
    BUGGY,
    FIXED,
    TASK,
    call,
    fix_median_session,
    git,
    make_config,
    make_sample_repo,
    with_identity,
)
from tests.locusd.peers import Client, commit_everything
from tests.support.anthropic_server import AnthropicServer
from tests.support.scripted import Fail

pytestmark = pytest.mark.timeout(120)
EDIT = call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-branches-test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return with_identity(make_sample_repo(tmp_path))


def locus_branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "--format=%(refname:short)", "locus/*").split()


def run_refs(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/locus/runs/")
    return dict(line.split(" ", 1) for line in out.splitlines())


def kept_diff(repo: Path, run: Run) -> str:
    """What the run's ref holds, against the run's base: its work."""
    assert run.base_commit
    return git(repo, "diff", run.base_commit, f"refs/locus/runs/{run.run_id}")


async def ended(daemon: Daemon, repo: Path, peer: Client | None = None) -> Run:
    run = await daemon.runs_start(RunStartParams(repo=str(repo), task=TASK), peer or Client())
    return await asyncio.wait_for(daemon.runs.wait(run.run_id), 90)


async def test_awaiting_review_keeps_the_work_under_a_ref_and_discard_leaves_nothing(
    repo: Path, tmp_path: Path
) -> None:
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await ended(daemon, repo)
        assert run.state == "awaiting_review" and run.branch is None
        worktree = Path(run.worktree or "")
        assert worktree.name.startswith(f"{run.run_id}-")
        assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD", "detached"
        assert locus_branches(repo) == []
        # Reachable without the worktree: the ref's snapshot holds exactly the run's change.
        assert list(run_refs(repo)) == [f"refs/locus/runs/{run.run_id}"]
        assert kept_diff(repo, run) == git(worktree, "diff", run.base_commit or "")
        assert "(ordered[middle - 1] + ordered[middle]) / 2" in kept_diff(repo, run)

        discarded = await daemon.review_discard(ReviewParams(run_id=run.run_id), peer)
        await daemon.close()
    assert discarded.state == "discarded" and discarded.branch is None
    assert locus_branches(repo) == [] and run_refs(repo) == {}
    assert git(worktree, "status", "--porcelain") == ""


async def test_an_accepted_commit_gets_its_branch_and_the_ref_goes(
    repo: Path, tmp_path: Path
) -> None:
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await ended(daemon, repo)
        result = await commit_everything(daemon, run.run_id, peer)
        committed = daemon.runs.get(run.run_id)
        await daemon.close()
    branch = branch_name(run.run_id, run.title)
    assert branch.startswith(f"locus/{run.run_id}-")
    assert result.branch == committed.branch == branch
    assert locus_branches(repo) == [branch]
    assert git(repo, "rev-parse", branch) == result.commit == committed.commit
    assert git(repo, "rev-parse", f"{branch}^") == run.base_commit
    assert git(Path(run.worktree or ""), "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert run_refs(repo) == {}, "committed: the branch holds what was accepted"


async def test_a_failed_run_leaves_no_branch_its_work_under_its_ref(
    repo: Path, tmp_path: Path
) -> None:
    # The model edits, then its server breaks: the run fails with changes.
    async with AnthropicServer([EDIT]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await ended(daemon, repo)
        assert run.state == "failed"
        assert locus_branches(repo) == []
        assert FIXED.splitlines()[1].strip() in kept_diff(repo, run)
        await daemon.review_discard(ReviewParams(run_id=run.run_id), Client())
        await daemon.close()
    assert locus_branches(repo) == [] and run_refs(repo) == {}


async def test_a_cancelled_run_leaves_no_branch_its_work_under_its_ref(
    repo: Path, tmp_path: Path
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def later(request: ApprovalRequest) -> ApprovalAnswer:
        asked.set()
        await release.wait()
        return ApprovalAnswer(decision="reject")

    peer = Client(later)
    session = [EDIT, call("run_command", command="python3 -c 'print(1)'")]
    async with AnthropicServer(session) as model:
        config = make_config(tmp_path, base_url=model.base_url)
        config.agent.policy = CommandPolicy(ask=["python3 *"])
        daemon = Daemon(config)
        started = await daemon.runs_start(RunStartParams(repo=str(repo), task=TASK), peer)
        await daemon.runs_subscribe(RunRef(run_id=started.run_id), peer)
        await asyncio.wait_for(asked.wait(), 60)  # edited, now waiting for an approval
        cancelling = asyncio.ensure_future(
            daemon.runs_cancel(RunCancelParams(run_id=started.run_id), peer)
        )
        await asyncio.sleep(0)  # the cancel is asked for before the answer comes
        release.set()
        run = await asyncio.wait_for(cancelling, 60)
        assert run.state == "cancelled"
        assert locus_branches(repo) == []
        assert FIXED.splitlines()[1].strip() in kept_diff(repo, run)
        await daemon.review_discard(ReviewParams(run_id=run.run_id), peer)
        await daemon.close()
    assert locus_branches(repo) == [] and run_refs(repo) == {}


async def test_a_run_without_changes_has_no_ref_and_its_worktree_is_renamed_for_the_next(
    repo: Path, tmp_path: Path
) -> None:
    refused = Fail(400, "invalid_request_error", "not today")  # fails before any change
    async with AnthropicServer([refused, *fix_median_session()]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        first = await ended(daemon, repo)
        assert first.state == "failed"
        assert locus_branches(repo) == [] and run_refs(repo) == {}
        second = await ended(daemon, repo)  # takes the first one's worktree from the pool
        await daemon.close()
    assert second.state == "awaiting_review"
    old, new = Path(first.worktree or ""), Path(second.worktree or "")
    assert new.parent == old.parent and not old.exists()
    assert new.name.startswith(f"{second.run_id}-"), "named after its current run"
    assert [p.name for p in new.parent.iterdir()] == [new.name], "reused, not a second one"
    assert locus_branches(repo) == [] and list(run_refs(repo)) == [
        f"refs/locus/runs/{second.run_id}"
    ]


@pytest.mark.parametrize("point", ["pool.claimed", "pool.moved"])
async def test_an_agent_process_killed_while_taking_a_pooled_worktree_loses_nothing(
    point: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL (``LOCUS_CRASH_AT``, which the agent process inherits) between the steps of a
    pool reuse: the run fails naming its worktree, no worktree is leaked, no branch made, and
    the worktree serves again once the run is discarded."""
    refused = Fail(400, "invalid_request_error", "not today")
    async with AnthropicServer([refused, *fix_median_session()]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        first = await ended(daemon, repo)  # no changes: its worktree goes to the pool
        monkeypatch.setenv("LOCUS_CRASH_AT", point)
        killed = await ended(daemon, repo)
        monkeypatch.delenv("LOCUS_CRASH_AT")
        assert killed.state == "failed" and "signal 9" in (killed.reason or "")
        where = Path(killed.worktree or "")
        folders = list(where.parent.iterdir())
        assert folders == [where], "named by the run, and the only one: nothing leaked"
        renamed = point == "pool.moved"
        assert where.name.startswith(f"{killed.run_id if renamed else first.run_id}-")
        assert git(where, "status", "--porcelain") == "" and locus_branches(repo) == []

        await daemon.review_discard(ReviewParams(run_id=killed.run_id), Client())
        again = await ended(daemon, repo)  # the same worktree, renamed for this run
        await daemon.close()
    assert again.state == "awaiting_review"
    assert Path(again.worktree or "").name.startswith(f"{again.run_id}-")
    assert len(list(where.parent.iterdir())) == 1 and locus_branches(repo) == []


async def test_a_worktree_head_pointed_at_the_users_branch_is_never_committed_on_or_reset(
    repo: Path, tmp_path: Path
) -> None:
    """The agent's commands can point the worktree's HEAD at any branch (HEAD lives in the
    worktree's own git dir): a commit would then land on the user's branch, a discard reset it.
    Neither happens."""
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await ended(daemon, repo)
        worktree = Path(run.worktree or "")
        (repo / "notes.txt").write_text("the user's own work\n")
        git(repo, "add", "notes.txt")
        git(repo, "commit", "-qm", "user work")  # main moves on past the run's base
        mine = git(repo, "rev-parse", "main")
        git(worktree, "symbolic-ref", "HEAD", "refs/heads/main")  # what the agent can do

        with pytest.raises(LocusError, match="HEAD is on branch main, not on a detached HEAD"):
            await commit_everything(daemon, run.run_id, Client())
        assert daemon.runs.get(run.run_id).state == "awaiting_review"
        discarded = await daemon.review_discard(ReviewParams(run_id=run.run_id), Client())
        await daemon.close()
    assert discarded.state == "discarded"
    assert git(repo, "rev-parse", "main") == mine, "the user's branch is untouched"
    assert git(repo, "status", "--porcelain") == ""
    assert git(worktree, "rev-parse", "--abbrev-ref", "HEAD") == "HEAD"
    assert git(worktree, "rev-parse", "HEAD") == run.base_commit
    assert locus_branches(repo) == [] and run_refs(repo) == {}
