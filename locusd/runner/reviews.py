"""Reviewing a finished run: the review model (``locusd/review``, pure) over the run's worktree,
decisions kept in the run store, and the commit of what was accepted (whose report to the cloud
the run's attempt makes, as the lifecycle table says).

The diff is computed afresh on every call, so its revision follows the worktree: a decision or
a commit against a revision the user did not see is refused (``review_stale``).

The commit is a durable step: its intent (the patch, the message, the head it goes on, the
branch it makes) is recorded with the move to ``committing``; recovery (:meth:`Reviews.recover`)
finds a commit that git made as done (and puts it on its branch), and otherwise undoes the
half-made one, so a retry never re-applies a patch that HEAD already holds.

Branches: a run's worktree has a detached HEAD, its work kept under ``refs/locus/runs/<run-id>``
(``locusd/git/worktrees.py``). Only an accepted commit gets a branch, ``locus/<run-id>-<slug>``
(or the branch the worktree is already on: a further round of a committed run, or a run an
older Locus made); committing or discarding deletes the run's ref.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from locusd.agent import transcript
from locusd.agent.confine import Confined, ConfinementError
from locusd.crashpoints import crashpoint
from locusd.git import commits
from locusd.git.cli import GitFailed
from locusd.git.diffs import diff_and_left_out
from locusd.git.repo import Repository, RepositoryError
from locusd.git.worktrees import RUN_REFS, Worktree, WorktreeError, branch_name, drop_work
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import (
    CommitResult,
    DecisionIn,
    FileContent,
    FileView,
    HunkView,
    ReviewView,
    Run,
)
from locusd.review import (
    Decision,
    FileDiff,
    Review,
    ReviewError,
    ReviewStale,
    UnknownTarget,
    accepted_patch,
    decide,
    parse,
    rejected,
    retain,
)
from locusd.review.recap import commit_message, tally, with_trailer
from locusd.review.wire import from_decision, to_decision
from locusd.runner.lifecycle import REVIEWABLE
from locusd.runner.runs import Runs

log = logging.getLogger(__name__)


def _original_task(run: Run) -> str:
    """The task as the agent first got it (the run keeps only a title): the transcript's."""
    if run.transcript:
        try:
            header = transcript.read(Path(run.transcript))[0]
        except (OSError, transcript.TranscriptError):
            return run.title
        if isinstance(header, transcript.Header):
            return header.task
    return run.title


def _worktree(run: Run) -> Repository:
    """The run's worktree as a repository (a clear error when it is gone)."""
    assert run.worktree
    try:
        return Repository(Path(run.worktree))
    except RepositoryError as exc:
        raise LocusError(Code.INVALID_RUN_STATE, f"run {run.run_id}: {exc}") from None


def _reset_index(run: Run) -> None:
    """Clear what a commit that did not happen staged (the worktree's files stay)."""
    _worktree(run).run("reset", "-q", timeout=300)


def _on_branch(run: Run, branch: str) -> None:
    """Put the worktree's HEAD (the accepted commit) on ``branch``; made here unless it is
    there already (a kill between making it and switching to it). Files stay as they are."""
    worktree = _worktree(run)
    if worktree.current_branch() == branch:
        return
    if not worktree.branch_exists(branch):
        worktree.switch_to_branch(branch, create=True)
    elif worktree.resolve(branch) == worktree.resolve("HEAD"):
        worktree.switch_to_branch(branch, create=False)
    else:
        raise LocusError(
            Code.INVALID_RUN_STATE,
            f"branch {branch} already exists on another commit: rename it (git branch -m)"
            " and commit again",
        )


def _diff_of(run: Run, commit: str) -> str:
    """The change ``commit`` made, as git shows it: what the cloud is sent of a commit, so it
    gets exactly what was committed, whatever the patch that made it looked like."""
    return _worktree(run).output(
        "diff", "--binary", "--no-color", "--no-ext-diff", f"{commit}^", commit, timeout=300
    )


def _named(branch: str | None) -> str:
    return f"branch {branch}" if branch else "a detached HEAD"


def _forget_work(run: Run) -> None:
    """The run was committed or discarded: its ref goes (the branch or nothing is left)."""
    try:
        drop_work(Path(run.repo), run.run_id)
    except WorktreeError as exc:
        log.warning("run %s: its ref stays: %s", run.run_id, exc)


class Reviews:
    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.store = runs.store

    # --- reading -------------------------------------------------------------------------

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run.state not in REVIEWABLE or not run.worktree or not run.base_commit:
            raise LocusError(
                Code.INVALID_RUN_STATE, f"run {run_id} is {run.state}: there is nothing to review"
            )
        return run

    async def _review(self, run: Run) -> Review:
        return (await self._reviewed(run))[0]

    async def _reviewed(self, run: Run) -> tuple[Review, list[str]]:
        """The review, and the changed files left out of it (hard-linked: see
        :func:`~locusd.git.diffs.diff_and_left_out`)."""
        assert run.worktree and run.base_commit
        diff, left_out = await asyncio.to_thread(
            diff_and_left_out, Path(run.worktree), run.base_commit
        )
        return parse(diff), left_out

    def _stored(self, run_id: str, review: Review) -> dict[str, Decision]:
        raw = self.store.decisions(run_id)
        decisions = {key: to_decision(DecisionIn.model_validate(v)) for key, v in raw.items()}
        return retain(review, decisions)  # those whose hunk or file still exists

    def _view(
        self,
        run: Run,
        review: Review,
        decisions: Mapping[str, Decision],
        left_out: list[str] | None = None,
    ) -> ReviewView:
        files = []
        undecided = 0
        for file in review.files:
            hunks = []
            for hunk in file.hunks:
                chosen = decisions.get(hunk.id) or decisions.get(file.path)
                undecided += chosen is None
                hunks.append(
                    HunkView(
                        id=hunk.id,
                        header=hunk.header,
                        lines=list(hunk.lines),
                        decision=from_decision(chosen) if chosen else None,
                    )
                )
            whole = decisions.get(file.path)
            undecided += file.has_structure and not file.hunks and whole is None
            files.append(
                FileView(
                    path=file.path,
                    old_path=file.old_path,
                    status=file.status,
                    binary=file.binary,
                    structural=file.has_structure,
                    hunks=hunks,
                    decision=from_decision(whole) if whole else None,
                )
            )
        evidence = self.store.events(run.run_id)
        verification = next((e.data for e in reversed(evidence) if e.kind == "verify"), None)
        network: list[dict[str, Any]] = next(
            (e.data["uses"] for e in reversed(evidence) if e.kind == "network"), []
        )
        decided = decide(review, review.revision, decisions)
        message = None
        if accepted_patch(decided).strip():
            message = commit_message(run.title, run.summary, run.task_id or run.run_id, decided)
        return ReviewView(
            commit_message=message,
            run_id=run.run_id,
            revision=review.revision,
            summary=run.summary,
            verification=verification,
            files=files,
            undecided=undecided,
            left_out=left_out or [],
            network=network,
        )

    async def get(self, run_id: str) -> ReviewView:
        run = self._run(run_id)
        review, left_out = await self._reviewed(run)
        return self._view(run, review, self._stored(run_id, review), left_out)

    async def content(self, run_id: str, path: str) -> FileContent:
        run = self._run(run_id)
        assert run.worktree and run.base_commit
        worktree = _worktree(run)
        shown = await asyncio.to_thread(
            worktree.run, "show", f"{run.base_commit}:{path}", timeout=60
        )
        base = shown.stdout if shown.returncode == 0 else None
        files = Confined(run.worktree)
        try:
            if stat.S_ISLNK(files.lstat(path).st_mode):  # what git stores: the link's text
                proposed: str | None = files.readlink(path)
            else:
                proposed = files.read_bytes(path).decode("utf-8", errors="replace")
        except FileNotFoundError:
            proposed = None
        except ConfinementError as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        return FileContent(path=path, base=base, proposed=proposed)

    # --- deciding ---------------------------------------------------------------------------

    async def decide(
        self, run_id: str, revision: str, given: Mapping[str, DecisionIn]
    ) -> ReviewView:
        run = self._run(run_id)
        review, left_out = await self._reviewed(run)
        decisions = {
            **self._stored(run_id, review),
            **{k: to_decision(v) for k, v in given.items()},
        }
        try:
            decided = decide(review, revision, decisions)
        except ReviewStale as exc:
            raise LocusError(Code.REVIEW_STALE, str(exc)) from None
        except (UnknownTarget, ReviewError) as exc:
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        attempt = self.runs.attempts.of_run(run_id)
        with self.store.db.transaction():  # the decisions and what the timeline hears, together
            self.store.save_decisions(
                run_id,
                {k: from_decision(v).model_dump(exclude_none=True) for k, v in decisions.items()},
            )
            if attempt is not None:
                attempt.reviewed(run, tally(decided, only=set(given)))
        return self._view(run, review, decisions, left_out)

    # --- committing ---------------------------------------------------------------------------

    async def commit(
        self, run_id: str, revision: str, integrate: str, message: str | None = None
    ) -> CommitResult:
        """Commit what is accepted, with ``message`` (the person's; the task's trailer is
        added when it lacks it) or the message built from what was accepted."""
        run = self._run(run_id)
        assert run.worktree
        review = await self._review(run)
        try:
            decided = decide(review, revision, self._stored(run_id, review))
        except ReviewStale as exc:
            raise LocusError(Code.REVIEW_STALE, str(exc)) from None
        patch = accepted_patch(decided)
        if not patch.strip():
            raise LocusError(
                Code.INVALID_ARGUMENT, "nothing was accepted: there is nothing to commit"
            )
        task = run.task_id or run.run_id
        if message is not None and not message.strip():
            raise LocusError(
                Code.INVALID_ARGUMENT,
                "message: the commit message is empty — write one, or leave it out for the"
                " message built from what was accepted",
            )
        text = (
            with_trailer(message, task)
            if message is not None
            else commit_message(run.title, run.summary, task, decided)
        )
        worktree = Path(run.worktree)
        branch = await asyncio.to_thread(self._branch_for, run)
        head = await asyncio.to_thread(_worktree(run).resolve, "HEAD")
        if head is None:
            raise LocusError(Code.INVALID_RUN_STATE, f"run {run_id}: its worktree has no HEAD")
        intent = {
            "kind": "commit",
            "from": run.state,
            "head": head,
            "message": text,
            "patch": patch,
            "branch": branch,
        }
        run = self.runs.move(run, "committing", step=intent)
        crashpoint("commit.intent")
        try:
            sha = await asyncio.to_thread(commits.commit_patch, worktree, patch, text)
        except commits.CommitError as exc:
            await asyncio.to_thread(_reset_index, run)
            self.runs.move(run, intent["from"])  # type: ignore[arg-type]  # a RunState
            raise LocusError(Code.INVALID_ARGUMENT, str(exc)) from None
        crashpoint("commit.made")
        on_branch = await asyncio.to_thread(self._put_on_branch, run, branch)
        crashpoint("commit.branched")
        committed = await asyncio.to_thread(_diff_of, run, sha)
        run = self.runs.move(run, "committed", patch=committed, commit=sha, branch=on_branch)
        crashpoint("commit.recorded")
        await asyncio.to_thread(_forget_work, run)
        queued = self.runs.attempts.of_run(run_id) is not None
        result = CommitResult(run_id=run_id, commit=sha, branch=on_branch, report_queued=queued)
        if integrate != "none":
            done = await asyncio.to_thread(self._integrate, run, integrate)
            result = result.model_copy(
                update={"integrated": done.ok, "conflicts": done.conflicts, "message": done.message}
            )
        return result

    @staticmethod
    def _branch_for(run: Run) -> str:
        """The branch an accepted commit goes on: the run's own (a further round of a
        committed run, or an older Locus's run), else a new ``locus/<run-id>-<slug>`` — which
        must not exist yet. The worktree's HEAD must be where Locus left it: the agent's
        commands can point it at any branch (HEAD lives in the worktree's own git dir), and a
        commit there would land on one of the user's branches."""
        worktree = _worktree(run)
        current = worktree.current_branch()
        if current != run.branch:
            raise LocusError(
                Code.INVALID_RUN_STATE,
                f"run {run.run_id}: its worktree's HEAD is on {_named(current)}, not on"
                f" {_named(run.branch)} where Locus left it (the agent's commands can move it):"
                " nothing was committed; look at the worktree, or discard the run",
            )
        if current is not None:
            return current
        branch = branch_name(run.run_id, run.title)
        if worktree.branch_exists(branch):
            raise LocusError(
                Code.INVALID_ARGUMENT,
                f"branch {branch} already exists: rename or delete it (git branch -m), then"
                " commit again",
            )
        return branch

    def recover(self) -> list[Run]:
        """Commits a previous daemon was making: one that git made (HEAD is a new commit on
        the recorded head, with the recorded message) is recorded as made, on its branch, with
        its report; one that it did not is undone. Either way the run is explicit again. Then
        the refs of runs committed or discarded (a kill before their ref went) are deleted."""
        recovered = []
        for run in self.store.in_states(["committing"]):
            intent = self.store.step(run.run_id) or {}
            if not run.worktree or intent.get("kind") != "commit":
                continue
            try:
                made_since = Repository(Path(run.worktree)).commits_since(intent["head"], "HEAD")
            except (RepositoryError, GitFailed) as exc:
                log.warning("run %s: cannot look for its commit: %s", run.run_id, exc)
                continue
            made = (
                len(made_since) == 1 and made_since[0].message.strip() == intent["message"].strip()
            )
            if made:
                commit = made_since[0].sha
                branch = self._put_on_branch(run, intent.get("branch"))
                ended = self.runs.move(
                    run, "committed", patch=_diff_of(run, commit), commit=commit, branch=branch
                )
            else:  # not made: what it staged goes, and the run is as it was
                _reset_index(run)
                ended = self.runs.move(run, intent["from"])
            recovered.append(ended)
        self._forget_decided()
        return recovered

    @staticmethod
    def _put_on_branch(run: Run, branch: object) -> str | None:
        """The commit just made (or made before a kill) on ``branch``; an older daemon's
        intent names none (its worktree was on its branch already). None when that fails (the
        name was taken meanwhile): the commit stays on the worktree's detached HEAD, which
        keeps it, and the run says so by naming no branch."""
        try:
            if isinstance(branch, str):
                _on_branch(run, branch)
                return branch
            return _worktree(run).current_branch()
        except (LocusError, GitFailed) as exc:
            log.warning("run %s: its commit stays on a detached HEAD: %s", run.run_id, exc)
            return None

    def _forget_decided(self) -> None:
        """Delete the refs of runs already committed or discarded (one ``for-each-ref`` per
        repository)."""
        decided: dict[str, set[str]] = {}
        for run in self.store.in_states(["committed", "reported", "report_refused", "discarded"]):
            decided.setdefault(run.repo, set()).add(run.run_id)
        for repo, run_ids in decided.items():
            try:
                repository = Repository(Path(repo))
                stale = [
                    f"delete {ref} {sha}"
                    for ref, sha in repository.refs(RUN_REFS).items()
                    if ref.removeprefix(RUN_REFS) in run_ids
                ]
                if stale:
                    repository.update_refs(stale)
            except (RepositoryError, GitFailed) as exc:
                log.warning("%s: the refs of decided runs stay: %s", repo, exc)

    def _integrate(self, run: Run, how: str) -> commits.Integration:
        assert run.worktree and run.branch
        if how == "merge":
            return commits.merge(Path(run.repo), run.branch)
        if how == "rebase":
            branch = Repository(Path(run.repo)).current_branch() or "HEAD"
            return commits.rebase(Path(run.worktree), branch)
        return commits.push(Path(run.worktree), "origin", run.branch)

    def committed_patch(self, run: Run) -> str:
        """The change a committed run's commit made (to offer it again)."""
        assert run.commit
        return _diff_of(run, run.commit)

    async def send_back(self, run_id: str, revision: str) -> tuple[Run, str, Worktree]:
        """What the agent's next round needs: the task again, with each rejected change and
        its comment; the run's worktree (its changes stay there). The caller moves the run to
        ``revised`` with the next round's start, in one transaction."""
        run = self._run(run_id)
        assert run.worktree and run.base_commit
        review = await self._review(run)
        try:
            decided = decide(review, revision, self._stored(run_id, review))
        except ReviewStale as exc:
            raise LocusError(Code.REVIEW_STALE, str(exc)) from None
        refused = rejected(decided)
        if not refused:
            raise LocusError(Code.INVALID_ARGUMENT, "nothing was rejected: commit it instead")
        notes = []
        for target, comment in refused:
            where = (
                target.path if isinstance(target, FileDiff) else f"{target.file} {target.header}"
            )
            body = "" if isinstance(target, FileDiff) else "\n" + "\n".join(target.lines)
            why = f" — the reviewer says: {comment}" if comment else ""
            notes.append(f"- {where}{why}{body}")
        task = await asyncio.to_thread(_original_task, run)
        prompt = (
            f"{task}\n\nA reviewer looked at your previous attempt; its changes are still in"
            " this worktree. These changes were rejected:\n"
            + "\n".join(notes)
            + "\nRevise them (the other changes were fine), then finish again."
        )
        worktree = Worktree(Path(run.worktree), run.branch or "", run.base_commit)
        return run, prompt, worktree

    async def discard(self, run_id: str) -> Run:
        """Throw the run's changes away — its commits on top of the base too — then its ref.
        Only the run's own branch is ever reset; a HEAD found elsewhere is detached at the
        base instead. Killed before the run is recorded discarded, the ref still holds the
        work."""
        run = self._run(run_id)
        assert run.worktree and run.base_commit
        worktree = _worktree(run)
        if run.branch is not None and worktree.current_branch() == run.branch:
            back: tuple[str, ...] = ("reset", "-q", "--hard", run.base_commit)
        else:  # detached, as Locus left it — or moved onto a branch that no discard may reset
            back = ("checkout", "-q", "--force", "--detach", run.base_commit)
        for args in (back, ("clean", "-q", "-d", "-f")):  # ignored files stay
            done = await asyncio.to_thread(worktree.run, *args, timeout=300)
            if done.returncode != 0:
                raise LocusError(Code.INVALID_ARGUMENT, f"git {args[0]} failed: {done.tail(300)}")
        crashpoint("discard.reset")
        run = self.runs.move(run, "discarded")
        crashpoint("discard.recorded")
        await asyncio.to_thread(_forget_work, run)
        return run
