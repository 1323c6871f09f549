"""A hostile model's file tools: every way out of the worktree an attacker would try — `..`,
absolute paths, /proc, symlinks it makes or the repository holds, hard links, .git, a FIFO —
through the real runner, against the canaries of kit.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.adversarial.kit import Canaries, attack
from tests.locusd.agentkit import call, git, make_sample_repo
from tests.support.anthropic_server import Reply

pytestmark = pytest.mark.timeout(300)


def key(canaries: Canaries) -> Path:
    return canaries.home / ".ssh" / "id_ed25519"


def reads(path: str) -> list[Reply]:
    """Every tool that reads, pointed at ``path``."""
    return [
        call("read_file", path=path),
        call("list_files", path=path),
        call("search", pattern="canary", path=path),
        call("edit_file", path=path, old_string="locus", new_string="stolen"),
    ]


async def test_paths_out_of_the_worktree_are_refused(canaries: Canaries) -> None:
    secret = key(canaries)
    paths = [
        str(secret),
        f"../../home/.ssh/{secret.name}",
        f"./../../../{secret.relative_to(secret.anchor)}",
        f"/proc/self/root{secret}",
        "/proc/self/environ",
        "/proc/self/cwd/../../home/.ssh",
        ".git/config",
        ".git/../.git/hooks/pre-commit",
    ]
    done = await attack(canaries, [step for path in paths for step in reads(path)])

    done.assert_contained()
    assert all(is_error for _, is_error in done.results())


async def test_symlinks_and_hard_links_made_by_a_command_lead_nowhere(
    canaries: Canaries,
) -> None:
    secret = key(canaries)
    links = (
        f"ln -s {secret} key; ln -s {secret.parent} dir; ln -s /proc/self/environ env;"
        f" mkdir -p deep && ln -s ../../../home deep/up; ln {secret} hard 2>&1;"
        f" ln {canaries.config.credentials_dir / 'credentials.json'} token 2>&1; ls -la"
    )
    script = [
        call("run_command", command=links),
        *(
            step
            for path in ("key", "dir", "env", "deep/up/.ssh", "hard", "token")
            for step in reads(path)
        ),
        call("search", pattern="locus-canary", path="."),
        call("search", pattern="locus-canary"),
        call("write_file", path="key", content="overwritten through a symlink\n"),
        call("write_file", path="dir/authorized_keys", content="ssh-ed25519 AAAA attacker\n"),
        call("write_file", path="hard", content="overwritten through a hard link\n"),
    ]
    done = await attack(canaries, script)

    done.assert_contained()
    assert not (secret.parent / "authorized_keys").exists()
    for step, (text, is_error) in zip(script[1:], done.results()[1:], strict=True):
        name, path = step.content[0]["name"], step.content[0]["input"].get("path")
        # A search may also answer "no matches" (it skips links, it does not follow them), and
        # a write to a link's own name replaces the link, not what it points to.
        skipped = name == "search" and text.startswith("no matches")
        replaced = name == "write_file" and path in ("key", "hard") and text.startswith("wrote")
        assert is_error or skipped or replaced, (name, text)


async def test_a_symlink_committed_in_the_repository_leads_nowhere(canaries: Canaries) -> None:
    repo = make_sample_repo(canaries.where)
    os.symlink(key(canaries), repo / "deploy_key")
    os.symlink(canaries.home, repo / "home")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=E", "-c", "user.email=e@x", "commit", "-qm", "links")
    script = [
        *reads("deploy_key"),
        *reads("home/.ssh"),
        call("search", pattern="locus-canary"),
        call("run_command", command="git status --short; git diff"),
    ]
    done = await attack(canaries, script, repo=repo)

    done.assert_contained()


async def test_a_fifo_and_a_device_are_refused_without_waiting(canaries: Canaries) -> None:
    script = [
        call("run_command", command="mkfifo pipe"),
        call("read_file", path="pipe"),
        call("edit_file", path="pipe", old_string="a", new_string="b"),
        call("search", pattern="x", path="pipe"),
        call("write_file", path="pipe", content="x"),
        call("run_command", command="ln -s /dev/zero zero; ln -s /dev/stdin in"),
        call("read_file", path="zero"),
        call("read_file", path="in"),
    ]
    done = await attack(canaries, script)

    done.assert_contained()
    results = done.results()
    # write_file replaces the FIFO with a regular file (an atomic rename), never opens it
    assert [is_error for _, is_error in results] == [False, *[True] * 3, False, False, True, True]
    assert results[4][0].startswith("wrote")
