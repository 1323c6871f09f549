"""Reviewing a run through the daemon's handlers, on real worktrees: read, decide (stale
revisions refused), commit only what was accepted, discard; and a cloud task reported as
``verification`` after its commit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from locusd.daemon import Daemon
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    CommitParams,
    ContentParams,
    DecideParams,
    DecisionIn,
    LoginParams,
    ReviewParams,
    Run,
    RunStartParams,
    SendBackParams,
    Task,
    TaskCreateParams,
    WorkerStartParams,
)
from tests.conftest import Cloud, Template, start_cloud
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
from tests.locusd.peers import Client, accept_everything, commit_everything
from tests.support.anthropic_server import AnthropicItem, AnthropicServer
from tests.support.client import Api, timeline

pytestmark = pytest.mark.timeout(120)
ACCEPT = DecisionIn(action="accept")


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-review-test")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return with_identity(make_sample_repo(tmp_path))


def two_file_session() -> list[AnthropicItem]:
    """The fix, plus an unrelated README change the reviewer will reject."""
    session = fix_median_session()
    readme = call("edit_file", path="README.md", old_string="tiny project", new_string="project")
    return [*session[:2], readme, *session[2:]]


REMOTE = "https://git.example.com/acme/sample.git"


async def serve_from(cloud: Cloud, repo: Path) -> None:
    """The checkout gets a remote, and the cloud's project lists it."""
    git(repo, "remote", "add", "origin", REMOTE)
    (await cloud.api.patch(f"/projects/{cloud.project_id}", json={"remotes": [REMOTE]})).ok()


async def queue_and_work(daemon: Daemon, cloud: Cloud, repo: Path, peer: Client) -> Task:
    """Log in, queue the sample's task, and let the worker take it once."""
    await daemon.auth_login(LoginParams(cloud_url=cloud.url, token=cloud.first_start.token), peer)
    task = await daemon.tasks_create(
        TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK), peer
    )
    await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
    await asyncio.wait_for(daemon.worker_done(), 90)
    return task


async def finished_run(daemon: Daemon, repo: Path) -> Run:
    run = await daemon.runs_start(RunStartParams(repo=str(repo), task=TASK), Client())
    done = await asyncio.wait_for(daemon.runs.wait(run.run_id), 90)
    assert done.state == "awaiting_review", done.reason
    return done


async def test_accept_some_reject_some_commits_only_the_accepted(
    repo: Path, tmp_path: Path
) -> None:
    peer = Client()
    async with AnthropicServer(two_file_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await finished_run(daemon, repo)

    view = await daemon.review_get(ReviewParams(run_id=run.run_id), peer)
    assert sorted(f.path for f in view.files) == ["README.md", "stats.py"]
    assert view.undecided == 2 and view.summary
    assert view.verification is not None and view.verification["passed"] is True
    content = await daemon.review_content(ContentParams(run_id=run.run_id, path="stats.py"), peer)
    assert content.base is not None and BUGGY in content.base
    assert content.proposed is not None and FIXED in content.proposed

    (fix,) = next(f for f in view.files if f.path == "stats.py").hunks
    with pytest.raises(LocusError) as stale:
        await daemon.review_decide(
            DecideParams(run_id=run.run_id, revision="0" * 16, decisions={fix.id: ACCEPT}), peer
        )
    assert stale.value.code == Code.REVIEW_STALE
    reject = DecisionIn(action="reject", comment="leave the README alone")
    decided = await daemon.review_decide(
        DecideParams(
            run_id=run.run_id,
            revision=view.revision,
            decisions={fix.id: ACCEPT, "README.md": reject},
        ),
        peer,
    )
    assert decided.undecided == 0
    assert next(f for f in decided.files if f.path == "README.md").decision == reject

    result = await daemon.review_commit(
        CommitParams(run_id=run.run_id, revision=view.revision), peer
    )
    worktree = Path(run.worktree or "")
    assert git(worktree, "show", "--name-only", "--format=", result.commit).split() == ["stats.py"]
    assert "Locus-Task: " in git(worktree, "log", "-1", "--format=%B")
    assert git(worktree, "status", "--porcelain") == "M README.md"  # the rejected change stays
    assert not result.report_queued  # a local run: nothing to report
    assert daemon.runs.get(run.run_id).state == "committed"  # and never "reported"
    await daemon.close()


async def test_a_commit_or_send_back_on_a_stale_revision_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    """Everything accepted, then the worktree changes after the review was read (the agent's
    late write, another editor): committing or sending back on the revision the user saw is
    refused, and nothing is committed — the new change would otherwise go in unreviewed."""
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await finished_run(daemon, repo)
    seen = await accept_everything(daemon, run.run_id, peer)
    worktree = Path(run.worktree or "")
    head = git(worktree, "rev-parse", "HEAD")
    (worktree / "stats.py").write_text((worktree / "stats.py").read_text() + "UNSEEN = 1\n")

    for attempt in (
        daemon.review_commit(CommitParams(run_id=run.run_id, revision=seen), peer),
        daemon.review_send_back(SendBackParams(run_id=run.run_id, revision=seen), peer),
    ):
        with pytest.raises(LocusError) as stale:
            await attempt
        assert stale.value.code == Code.REVIEW_STALE
    assert git(worktree, "rev-parse", "HEAD") == head  # nothing committed
    assert daemon.runs.get(run.run_id).state == "awaiting_review"
    fresh = await daemon.review_get(ReviewParams(run_id=run.run_id), peer)
    assert fresh.revision != seen
    await daemon.close()


async def test_a_hard_linked_outside_file_is_named_and_never_reviewed_or_committed(
    repo: Path, tmp_path: Path
) -> None:
    """After the run, a hard link to a file outside appears in the worktree (a process the run
    left behind could plant one): the review leaves it out and says so; accepting everything
    commits the rest only."""
    peer = Client()
    canary = tmp_path / "outside-key"
    canary.write_text("CANARY-REVIEW-SECRET\n")
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await finished_run(daemon, repo)
    worktree = Path(run.worktree or "")
    (worktree / "stolen").hardlink_to(canary)
    (worktree / "shortcut").symlink_to(canary)

    view = await daemon.review_get(ReviewParams(run_id=run.run_id), peer)
    assert view.left_out == ["stolen"]
    assert [f.path for f in view.files] == ["shortcut", "stats.py"]
    # A symlink is shown as what git stores, its text; never what it points to.
    link = await daemon.review_content(ContentParams(run_id=run.run_id, path="shortcut"), peer)
    assert link.proposed == str(canary)
    for path in ("stolen", "../outside-key"):
        with pytest.raises(LocusError):
            await daemon.review_content(ContentParams(run_id=run.run_id, path=path), peer)
    decided = await daemon.review_decide(
        DecideParams(run_id=run.run_id, revision=view.revision, decisions={"stats.py": ACCEPT}),
        peer,
    )
    assert decided.left_out == ["stolen"]
    result = await daemon.review_commit(
        CommitParams(run_id=run.run_id, revision=view.revision), peer
    )
    assert git(worktree, "show", "--name-only", "--format=", result.commit).split() == ["stats.py"]
    assert "CANARY" not in git(worktree, "show", result.commit)
    await daemon.close()


async def test_merge_into_the_checkout_and_discard(repo: Path, tmp_path: Path) -> None:
    peer = Client()
    async with AnthropicServer(fix_median_session() * 2) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        first = await finished_run(daemon, repo)
        second = await finished_run(daemon, repo)

    merged = await commit_everything(daemon, first.run_id, peer, integrate="merge")
    assert merged.integrated is True and FIXED in (repo / "stats.py").read_text()

    thrown = await daemon.review_discard(ReviewParams(run_id=second.run_id), peer)
    assert thrown.state == "discarded"
    assert git(Path(second.worktree or ""), "status", "--porcelain") == ""
    with pytest.raises(LocusError) as over:
        await daemon.review_get(ReviewParams(run_id=second.run_id), peer)
    assert over.value.code == Code.INVALID_RUN_STATE
    await daemon.close()


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_a_committed_cloud_task_is_reported_for_verification(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    await serve_from(cloud, repo)
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        task = await queue_and_work(daemon, cloud, repo, peer)
    (run,) = daemon.store.all()
    result = await commit_everything(daemon, run.run_id, peer)
    assert result.report_queued
    await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
    # "reported" only once the cloud acknowledged the verification report
    assert daemon.runs.get(run.run_id).state == "reported"
    await daemon.close()
    assert (await cloud.api.get(f"/tasks/{task.id}")).ok()["status"] == "verification"
    events = await timeline(cloud.api, task.id)
    assert [e["to_status"] for e in events if e["kind"] == "status"][-1] == "verification"


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_a_report_survives_a_dead_daemon_and_arrives_once(
    template: Template, db_url: str, repo: Path, tmp_path: Path
) -> None:
    """Commit while the cloud is away, the daemon dies before it can report; the next daemon
    reports, once."""
    remote = "https://git.example.com/acme/sample.git"
    git(repo, "remote", "add", "origin", remote)
    first = template.first_start
    runner, url, _ = await start_cloud(db_url)
    port = int(url.rsplit(":", 1)[1])
    peer = Client()
    config = make_config(tmp_path)
    async with aiohttp.ClientSession() as session, AnthropicServer(fix_median_session()) as model:
        api = Api(session, url, first.token)
        (await api.patch(f"/projects/{first.project_id}", json={"remotes": [remote]})).ok()
        config.agent.base_url = model.base_url
        config.daemon.outbox_retry_cap = 0.2
        daemon = Daemon(config)
        await daemon.auth_login(LoginParams(cloud_url=url, token=first.token), peer)
        task = await daemon.tasks_create(
            TaskCreateParams(project_id=first.project_id, title="Fix median", description=TASK),
            peer,
        )
        await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
        await asyncio.wait_for(daemon.worker_done(), 90)
        await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
        (run,) = daemon.store.all()
        revision = await accept_everything(daemon, run.run_id, peer)
        await asyncio.wait_for(daemon.outbox.wait_empty(), 30)  # the decisions, on the timeline
        await runner.cleanup()  # the cloud is away …
        await daemon.review_commit(CommitParams(run_id=run.run_id, revision=revision), peer)
        assert daemon.outbox.pending_count() == 2  # patch and status, kept
        await daemon.close()  # … and the daemon goes before it could send them

        runner, _, _ = await start_cloud(db_url, port=port)  # the cloud is back
        try:
            again = Daemon(config)  # the next daemon, on the same state
            again.connected(peer)  # a client connects: the outbox drains
            await asyncio.wait_for(again.outbox.wait_empty(), 60)
            await again.close()
            assert (await api.get(f"/tasks/{task.id}")).ok()["status"] == "verification"
            events = await timeline(api, task.id)
            artifacts = (await api.get(f"/tasks/{task.id}/artifacts")).ok()["items"]
        finally:
            await runner.cleanup()
    statuses = [e["to_status"] for e in events if e["kind"] == "status"]
    assert statuses.count("verification") == 1
    # Everything accepted: the committed patch is the run's diff, stored once (by sha256).
    assert [a["kind"] for a in artifacts].count("patch") == 1


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_auto_commit_for_a_chosen_repository(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    await serve_from(cloud, repo)
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        config = make_config(tmp_path, base_url=model.base_url)
        config.daemon.auto_commit = [repo]
        daemon = Daemon(config)
        daemon.connected(peer)
        task = await queue_and_work(daemon, cloud, repo, peer)
        await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
    (run,) = daemon.store.all()
    await daemon.close()
    assert run.state == "reported"
    assert not [n for m, n in peer.notes if m == "locus/needsYou"], "committed: nothing to review"
    assert "Locus-Task: " in git(Path(run.worktree or ""), "log", "-1", "--format=%B")
    assert (await cloud.api.get(f"/tasks/{task.id}")).ok()["status"] == "verification"


async def test_send_back_gives_the_agent_a_second_round_in_the_same_worktree(
    repo: Path, tmp_path: Path
) -> None:
    peer = Client()
    round_two = [
        call("edit_file", path="README.md", old_string="A project", new_string="A tiny project"),
        call("finish", summary="Left the README as it was."),
    ]
    async with AnthropicServer([*two_file_session(), *round_two]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        first = await finished_run(daemon, repo)
        view = await daemon.review_get(ReviewParams(run_id=first.run_id), peer)
        (fix,) = next(f for f in view.files if f.path == "stats.py").hunks
        reject = DecisionIn(action="reject", comment="leave the README alone")
        await daemon.review_decide(
            DecideParams(
                run_id=first.run_id,
                revision=view.revision,
                decisions={fix.id: ACCEPT, "README.md": reject},
            ),
            peer,
        )
        second = await daemon.review_send_back(
            SendBackParams(run_id=first.run_id, revision=view.revision), peer
        )
        done = await asyncio.wait_for(daemon.runs.wait(second.run_id), 90)

    assert daemon.runs.get(first.run_id).state == "revised"
    assert done.state == "awaiting_review" and done.worktree == first.worktree
    # What the agent was told in round two: the task, the rejected change and the comment.
    told = model.requests[-2].body
    assert told is not None
    prompt = told["messages"][0]["content"][0]["text"]
    assert TASK in prompt and "leave the README alone" in prompt and "README.md" in prompt
    # The new revision: the README change is gone, the fix (still accepted) remains.
    again = await daemon.review_get(ReviewParams(run_id=second.run_id), peer)
    assert again.revision != view.revision
    assert [f.path for f in again.files] == ["stats.py"]
    # The round's work is kept under the new run's ref (the first run's went with it), and
    # neither round made a branch.
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/locus/")
    assert refs == f"refs/locus/runs/{second.run_id}"
    assert "README" not in git(repo, "diff", "--stat", first.base_commit or "", refs)
    assert git(repo, "branch", "--list", "locus/*") == ""
    await daemon.close()


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_send_back_on_a_cloud_task_runs_it_again_under_a_fresh_lease(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    await serve_from(cloud, repo)
    peer = Client()
    round_two = [
        call("edit_file", path="README.md", old_string="A project", new_string="A tiny project"),
        call("finish", summary="Left the README as it was."),
    ]
    async with AnthropicServer([*two_file_session(), *round_two]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        task = await queue_and_work(daemon, cloud, repo, peer)
        (first,) = daemon.store.all()
        view = await daemon.review_get(ReviewParams(run_id=first.run_id), peer)
        reject = DecisionIn(action="reject", comment="leave the README alone")
        await daemon.review_decide(
            DecideParams(
                run_id=first.run_id,
                revision=view.revision,
                decisions={"stats.py": ACCEPT, "README.md": reject},
            ),
            peer,
        )
        second = await daemon.review_send_back(
            SendBackParams(run_id=first.run_id, revision=view.revision), peer
        )
        done = await asyncio.wait_for(daemon.runs.wait(second.run_id), 90)
        await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
        await daemon.close()
    assert done.state == "awaiting_review" and done.task_id == task.id
    events = await timeline(cloud.api, task.id)
    moves = [e["to_status"] for e in events if e["kind"] == "status"]
    assert moves[-4:] == ["running", "awaiting_review", "running", "awaiting_review"]


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
async def test_changes_requested_in_the_cloud_continue_on_the_same_branch_then_done(
    cloud: Cloud, repo: Path, tmp_path: Path
) -> None:
    await serve_from(cloud, repo)
    peer = Client()
    second_attempt = [
        call("edit_file", path="stats.py", old_string="    middle = len(ordered) // 2\n",
             new_string="    middle = len(ordered) // 2  # the upper middle\n"),
        call("finish", summary="Explained the middle index."),
    ]  # fmt: skip
    async with AnthropicServer([*fix_median_session(), *second_attempt]) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        await daemon.auth_login(
            LoginParams(cloud_url=cloud.url, token=cloud.first_start.token), peer
        )
        task = await daemon.tasks_create(
            TaskCreateParams(project_id=cloud.project_id, title="Fix median", description=TASK),
            peer,
        )

        async def attempt() -> Run:
            await daemon.worker_start(WorkerStartParams(once=True, repos=[str(repo)]), peer)
            await asyncio.wait_for(daemon.worker_done(), 90)
            run = daemon.store.all()[-1]
            await commit_everything(daemon, run.run_id, peer)
            await asyncio.wait_for(daemon.outbox.wait_empty(), 30)
            return daemon.runs.get(run.run_id)  # committed: it names its branch now

        first = await attempt()
        feedback = {"feedback": "Please explain the middle index in a comment."}
        (await cloud.api.post(f"/tasks/{task.id}/request-changes", json=feedback)).ok()
        second = await attempt()
        await daemon.close()

    # The second attempt continued in the first one's worktree, on its branch, with the feedback.
    assert second.worktree == first.worktree and second.branch == first.branch
    assert first.branch == f"locus/{first.run_id}-fix-median"
    told = model.requests[len(fix_median_session())].body
    assert told is not None
    assert "Please explain the middle index" in told["messages"][0]["content"][0]["text"]
    log = git(Path(first.worktree or ""), "log", "--format=%s", f"{first.base_commit}..HEAD")
    assert len(log.splitlines()) == 2  # two commits on the task branch, one per attempt
    (await cloud.api.post(f"/tasks/{task.id}/approve", json={})).ok()
    assert (await cloud.api.get(f"/tasks/{task.id}")).ok()["status"] == "done"


async def test_an_edited_hunk_is_committed_as_edited(repo: Path, tmp_path: Path) -> None:
    peer = Client()
    async with AnthropicServer(fix_median_session()) as model:
        daemon = Daemon(make_config(tmp_path, base_url=model.base_url))
        run = await finished_run(daemon, repo)
    view = await daemon.review_get(ReviewParams(run_id=run.run_id), peer)
    (hunk,) = view.files[0].hunks
    # The reviewer rewrites the hunk's new side: same fix, their own wording.
    new_side = [line[1:] for line in hunk.lines if line[:1] in (" ", "+")]
    edited = [
        line.replace("return (ordered[middle - 1] + ordered[middle]) / 2",
                     "return (ordered[middle - 1] + ordered[middle]) / 2  # mean of the pair")
        for line in new_side
    ]  # fmt: skip
    await daemon.review_decide(
        DecideParams(
            run_id=run.run_id,
            revision=view.revision,
            decisions={hunk.id: DecisionIn(action="edit", lines=edited)},
        ),
        peer,
    )
    result = await daemon.review_commit(
        CommitParams(run_id=run.run_id, revision=view.revision), peer
    )
    committed = git(Path(run.worktree or ""), "show", f"{result.commit}:stats.py")
    assert "# mean of the pair" in committed
    await daemon.close()
