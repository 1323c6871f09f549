"""Committing accepted changes and taking them to the user's branch, on real repositories."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from locusd.git.commits import CommitError, commit_patch, merge, message, rebase
from locusd.git.worktrees import Worktree, Worktrees
from tests.locusd.agentkit import git, make_sample_repo, with_identity


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return with_identity(make_sample_repo(tmp_path))


@pytest.fixture
def worktree(repo: Path, tmp_path: Path) -> Worktree:
    """A run's worktree on the branch its accepted commit gets (reviews.py makes it)."""
    made = Worktrees(repo, tmp_path / "worktrees").create(7, "fix median")
    git(made.path, "checkout", "-q", "-b", "locus/7-fix-median")
    return replace(made, branch="locus/7-fix-median")


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def test_only_the_accepted_patch_is_committed(worktree: Worktree) -> None:
    tree = worktree.path
    edit(tree / "stats.py", "ordered[middle]", "ordered[middle]  # fixed")
    edit(tree / "README.md", "tiny project", "small project")
    accepted = git(tree, "diff", "--", "stats.py") + "\n"
    text = message("Fix median", "Averages the middle pair.", 7)
    sha = commit_patch(tree, accepted, text)

    assert git(tree, "rev-parse", "HEAD") == sha
    assert git(tree, "show", "--name-only", "--format=", sha).split() == ["stats.py"]
    body = git(tree, "log", "-1", "--format=%an <%ae>%n%B", sha)
    assert body.startswith(
        "Ada Lovelace <ada@example.com>\nFix median\n\nAverages the middle pair."
    )
    assert "Locus-Task: 7" in body
    # What was not accepted is still in the worktree, uncommitted.
    assert git(tree, "status", "--porcelain") == "M README.md"


def test_nothing_accepted_or_no_identity_are_clear_errors(
    worktree: Worktree, repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(CommitError, match="nothing was accepted"):
        commit_patch(worktree.path, "", "x")
    git(repo, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.gitconfig
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    edit(worktree.path / "stats.py", "ordered[middle]", "ordered[middle]  # fixed")
    patch = git(worktree.path, "diff") + "\n"
    with pytest.raises(CommitError, match=r"git config --global user\.email"):
        commit_patch(worktree.path, patch, "x")


def test_merge_into_the_users_branch_and_a_conflict_changes_nothing(
    worktree: Worktree, repo: Path
) -> None:
    edit(worktree.path / "stats.py", "ordered[middle]", "ordered[middle]  # fixed")
    commit_patch(worktree.path, git(worktree.path, "diff") + "\n", message("Fix", None, 7))
    merged = merge(repo, worktree.branch)
    assert merged.ok and merged.commit == git(repo, "rev-parse", "HEAD")
    assert "# fixed" in (repo / "stats.py").read_text()

    # The user changes the same line; the next task's change conflicts.
    edit(repo / "stats.py", "# fixed", "# the user's fix")
    git(repo, "commit", "-qam", "user")
    before = git(repo, "rev-parse", "HEAD")
    edit(worktree.path / "stats.py", "# fixed", "# the agent's fix")
    commit_patch(worktree.path, git(worktree.path, "diff") + "\n", message("Again", None, 8))
    conflicted = merge(repo, worktree.branch)
    assert not conflicted.ok and conflicted.conflicts == ["stats.py"]
    assert git(repo, "rev-parse", "HEAD") == before
    assert git(repo, "status", "--porcelain") == ""  # nothing half-applied


def test_merge_refuses_a_dirty_checkout(worktree: Worktree, repo: Path) -> None:
    edit(worktree.path / "stats.py", "ordered[middle]", "ordered[middle]  # fixed")
    commit_patch(worktree.path, git(worktree.path, "diff") + "\n", message("Fix", None, 7))
    edit(repo / "README.md", "tiny", "dirty")
    refused = merge(repo, worktree.branch)
    assert not refused.ok and "uncommitted changes" in refused.message
    assert (repo / "README.md").read_text().count("dirty") == 1


def test_rebase_onto_a_moved_branch(worktree: Worktree, repo: Path) -> None:
    edit(worktree.path / "stats.py", "ordered[middle]", "ordered[middle]  # fixed")
    commit_patch(worktree.path, git(worktree.path, "diff") + "\n", message("Fix", None, 7))
    edit(repo / "README.md", "tiny", "little")
    git(repo, "commit", "-qam", "moved on")
    rebased = rebase(worktree.path, "main")
    assert rebased.ok
    assert git(worktree.path, "merge-base", "HEAD", "main") == git(repo, "rev-parse", "main")


def test_a_rebase_state_the_agent_planted_is_not_aborted(worktree: Worktree, repo: Path) -> None:
    """The agent can write its worktree's git dir: a planted rebase that "started" on the
    user's branch would, on ``rebase --abort``, switch the worktree to ``main`` — and the next
    accepted commit would land there. Locus refuses instead of aborting a state it did not
    make."""
    admin = Path(git(worktree.path, "rev-parse", "--absolute-git-dir"))
    (admin / "rebase-merge").mkdir()
    (admin / "rebase-merge" / "head-name").write_text("refs/heads/main\n")
    (admin / "rebase-merge" / "orig-head").write_text(git(repo, "rev-parse", "main") + "\n")
    (admin / "rebase-merge" / "onto").write_text(git(repo, "rev-parse", "main") + "\n")
    rebased = rebase(worktree.path, "main")
    assert not rebased.ok and "rebase-merge is under way" in rebased.message
    assert git(worktree.path, "symbolic-ref", "HEAD") == f"refs/heads/{worktree.branch}"


def test_git_apply_rejects_a_patch_that_does_not_fit(worktree: Worktree) -> None:
    bogus = "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(CommitError, match="git apply --cached"):
        commit_patch(worktree.path, bogus, "x")
    assert subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=worktree.path).returncode == 0
