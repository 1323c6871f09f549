"""Locus's own git calls never run a program the repository names: hooks under the common git
dir, filters (config + ``.gitattributes``), fsmonitor, external diff and textconv, merge
drivers, a ``.git`` file pointed at a git dir of the agent's — each planted as the agent's
commands could, each a script that leaves a canary file if it runs. And a program the user's
own config names (trusted) never sees a secret variable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from locusd.git import commits, programs
from locusd.git.diffs import diff_against
from locusd.git.worktrees import Worktrees

SECRET = "sk-canary-0123456789"
HOOKS = (
    *("post-checkout", "pre-commit", "post-commit", "commit-msg", "prepare-commit-msg"),
    *("reference-transaction", "post-index-change", "pre-auto-gc", "post-rewrite", "pre-push"),
    *("post-merge", "pre-merge-commit", "fsmonitor-watchman"),
)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's environment: a model API key and a token, and commits without the user's
    git config."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Dev")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "dev@example.com")


@pytest.fixture
def canaries(tmp_path: Path) -> Path:
    found = tmp_path / "canaries"
    found.mkdir()
    return found


def canary_script(canaries: Path, name: str) -> Path:
    """A program that records that it ran and the environment it saw, then passes stdin on."""
    script = canaries.parent / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\nenv > "{canaries}/{name}.$$"\ncat\n')
    script.chmod(0o755)
    return script


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.email", "dev@example.com")
    sh(path, "git", "config", "user.name", "Dev")
    (path / "app.py").write_text("print('hi')\n")
    sh(path, "git", "add", ".")
    sh(path, "git", "commit", "-q", "-m", "first")
    return path


def plant(worktree: Path, common: Path, canaries: Path) -> None:
    """What a hostile command in the worktree can write without a sandbox: config in the
    shared ``.git/config``, hooks, and attributes that name the configured drivers."""

    def config(*args: str) -> None:
        sh(worktree, "git", "config", *args)

    for driver in ("clean", "smudge", "process"):
        config(f"filter.evil.{driver}", str(canary_script(canaries, f"filter-{driver}")))
    config("filter.evil.required", "true")
    config("core.fsmonitor", str(canary_script(canaries, "fsmonitor")))
    config("diff.external", str(canary_script(canaries, "diff-external")))
    config("diff.evil.textconv", str(canary_script(canaries, "textconv")))
    config("diff.evil.command", str(canary_script(canaries, "diff-command")))
    config("merge.evil.driver", f"{canary_script(canaries, 'merge-driver')} %O %A %B")
    config("gpg.program", str(canary_script(canaries, "gpg")))
    hooks = common / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in HOOKS:
        script = canary_script(canaries, f"hook-{hook}")
        (hooks / hook).write_bytes(script.read_bytes())
        (hooks / hook).chmod(0o755)
    (worktree / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")
    (worktree / "app.py").write_text("print('changed')\n")
    (worktree / "new.py").write_text("print('new')\n")


def ran(canaries: Path) -> list[str]:
    return sorted(path.name.split(".")[0] for path in canaries.iterdir())


def test_the_daemons_git_calls_run_nothing_the_repository_names(
    repo: Path, tmp_path: Path, canaries: Path
) -> None:
    worktrees = Worktrees(repo, tmp_path / "worktrees")
    run = worktrees.create(1, "first run")
    plant(run.path, worktrees.common_dir, canaries)
    # The attack works on plain git (sanity): status runs the fsmonitor, add the filter.
    plain = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "plain-index")}
    subprocess.run(["git", "add", "--all"], cwd=run.path, env=plain, capture_output=True)
    sh(run.path, "git", "status", "--porcelain")
    assert {"fsmonitor", "filter-process"} <= set(ran(canaries))
    for planted in canaries.iterdir():
        planted.unlink()

    diff = diff_against(run.path, run.base_commit)
    assert "+print('changed')" in diff and "+print('new')" in diff
    assert worktrees.is_dirty(run)
    sha = commits.commit_patch(run.path, diff, commits.message("t", None, 1))
    assert sha == sh(run.path, "git", "rev-parse", "HEAD")
    worktrees.set_state(run, "done")
    second = worktrees.create(2, "second run", base=sha)  # checkout with smudge + hooks
    assert (second.path / "app.py").read_text() == "print('changed')\n"
    assert commits.merge(repo, sha).ok  # merge drivers, merge hooks (the run: detached)
    pooled = worktrees.take_from_pool(3, "third run", base=sha)  # a checkout in a pooled one
    assert pooled is not None and not run.path.exists()  # the same worktree, renamed for run 3
    worktrees.prune(keep_pool=0)
    assert ran(canaries) == []


def test_a_git_file_pointed_at_the_agents_own_git_dir_runs_nothing(
    repo: Path, tmp_path: Path, canaries: Path
) -> None:
    worktrees = Worktrees(repo, tmp_path / "worktrees")
    run = worktrees.create(1, "run")
    fake = run.path / "evil.git"
    sh(tmp_path, "git", "clone", "-q", "--bare", str(repo), str(fake))
    sh(fake, "git", "config", "filter.evil.clean", str(canary_script(canaries, "fake-clean")))
    sh(fake, "git", "config", "core.bare", "false")
    (fake / "hooks" / "post-index-change").write_bytes(
        canary_script(canaries, "fake-hook").read_bytes()
    )
    (fake / "hooks" / "post-index-change").chmod(0o755)
    (run.path / ".gitattributes").write_text("* filter=evil\n")
    (run.path / ".git").write_text(f"gitdir: {fake}\n")
    (run.path / "app.py").write_text("print('changed')\n")

    assert "+print('changed')" in diff_against(run.path, run.base_commit)
    assert ran(canaries) == []


def test_a_program_the_users_own_config_names_sees_no_secret(
    repo: Path, tmp_path: Path, canaries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's global config is trusted (git lfs installs its filter there): it runs, but
    with the secrets left out of its environment."""
    user_config = tmp_path / "gitconfig"
    user_config.write_text(f'[filter "lfs-like"]\n\tclean = {canary_script(canaries, "lfs")}\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user_config))
    worktrees = Worktrees(repo, tmp_path / "worktrees")
    run = worktrees.create(1, "run")
    (run.path / ".gitattributes").write_text("*.py filter=lfs-like\n")
    (run.path / "app.py").write_text("print('changed')\n")

    diff_against(run.path, run.base_commit)
    seen = [path.read_text() for path in canaries.iterdir()]
    assert seen, "the user's own filter runs"
    assert not any(SECRET in text for text in seen)
    assert not any("ANTHROPIC_API_KEY" in text or "GITHUB_TOKEN" in text for text in seen)


def test_overrides_neutralize_repository_keys_and_keep_the_users() -> None:
    listing = "\0".join(
        [
            "local", "filter.Evil.clean\n/x",
            "worktree", "core.sshCommand\nssh -i key",
            "global", "filter.lfs.clean\ngit-lfs clean -- %f",
            "local", "submodule.a.update\ncheckout",
            "local", "submodule.b.update\n!/bin/evil",
            "local", "remote.origin.uploadpack\n/bin/evil",
        ]
    ) + "\0"  # fmt: skip
    found = programs.overrides(listing)
    assert found[: len(programs.ALWAYS)] == list(programs.ALWAYS)
    assert ("filter.Evil.clean", "") in found and ("filter.Evil.required", "false") in found
    assert ("submodule.b.update", "checkout") in found
    assert ("remote.origin.uploadpack", "git-upload-pack") in found
    keys = {key for key, _ in found}
    assert "filter.lfs.clean" not in keys and "submodule.a.update" not in keys
    assert "core.sshCommand" not in keys  # a fetch's own: a deploy key


def test_only_commands_that_cannot_run_a_program_skip_the_listing() -> None:
    skip = [
        ["rev-parse", "--verify", "HEAD"], ["-c", "a.b=c", "log", "--format=%H"],
        ["--no-optional-locks", "worktree", "list"], ["read-tree", "HEAD"],
    ]  # fmt: skip
    listed = [
        ["add", "--all"], ["--no-optional-locks", "status"], ["diff", "--cached"],
        ["worktree", "add", "x"], ["worktree", "remove", "x"], ["commit", "-F", "-"],
        ["-c", "protocol.file.allow=always", "submodule", "update"], ["fetch", "origin"],
        ["merge", "x"], ["rebase", "x"], ["checkout", "-b", "x"], ["apply", "--cached"],
        ["grep", "-e", "x"], ["-C", "log", "status"], [],
    ]  # fmt: skip
    assert [programs.needs_listing(args) for args in skip] == [False] * len(skip)
    assert [programs.needs_listing(args) for args in listed] == [True] * len(listed)
    assert ("log.showSignature", "false") in programs.ALWAYS  # log runs gpg.program otherwise
