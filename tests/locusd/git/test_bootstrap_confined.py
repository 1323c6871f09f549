"""The repository's ``.locus.toml`` is untrusted: its ``copy`` list reads only regular files
inside the checkout and writes only inside the worktree (each way out refused with an error that
names ``copy`` and the fix), and its ``setup`` command runs in the run's sandbox with the
scrubbed environment — no secret variable, no ``~/.ssh``, no network, no write to the user's
repository."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from locusd.agent.commands import scrubbed_env
from locusd.agent.sandbox import Sandbox, for_run, probe
from locusd.git.worktrees import Worktree, WorktreeError, Worktrees
from locusd.repo_config import RepoConfig, RepoConfigError, load

SECRET = "sk-canary-setup"


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    sh(path, "git", "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('hi')\n")
    (path / ".gitignore").write_text("*.env\nconfig/\n")
    sh(path, "git", "add", ".")
    sh(path, "git", "-c", "user.name=D", "-c", "user.email=d@x", "commit", "-q", "-m", "first")
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY\n")
    return secret


@pytest.fixture
def run(checkout: Path, tmp_path: Path) -> tuple[Worktrees, Worktree]:
    worktrees = Worktrees(checkout, tmp_path / "worktrees")
    return worktrees, worktrees.create(1, "boot")


def copying(*patterns: str) -> RepoConfig:
    return RepoConfig.model_validate({"copy": list(patterns)})


def test_copy_brings_regular_files_in(run: tuple[Worktrees, Worktree], checkout: Path) -> None:
    worktrees, worktree = run
    (checkout / ".env").write_text("A=1\n")
    (checkout / "config").mkdir()
    (checkout / "config" / "db.env").write_text("B=2\n")
    worktrees.bootstrap(worktree, copying(".env", "config/*.env", "missing.txt"))
    assert (worktree.path / ".env").read_text() == "A=1\n"
    assert (worktree.path / "config" / "db.env").read_text() == "B=2\n"


@pytest.mark.parametrize("pattern", ["../outside.env", "/etc/passwd", "~/.ssh/id_rsa", "a/../../x"])
def test_a_copy_pattern_that_leaves_the_checkout_is_a_config_error(
    checkout: Path, pattern: str
) -> None:
    (checkout / ".locus.toml").write_text(f"copy = [{pattern!r}]\n")
    with pytest.raises(RepoConfigError, match=r"copy.*(absolute|leaves the checkout)"):
        load(checkout)


def test_a_symlink_out_of_the_checkout_is_refused(
    run: tuple[Worktrees, Worktree], checkout: Path, outside: Path
) -> None:
    worktrees, worktree = run
    (checkout / "key.env").symlink_to(outside)
    with pytest.raises(WorktreeError, match=r"^copy: key.env .*symlink.*copy \(\.locus\.toml\)"):
        worktrees.bootstrap(worktree, copying("*.env"))
    assert not (worktree.path / "key.env").exists()


def test_a_symlinked_directory_out_of_the_checkout_is_refused(
    run: tuple[Worktrees, Worktree], checkout: Path, outside: Path
) -> None:
    worktrees, worktree = run
    (checkout / "config").symlink_to(outside.parent)
    with pytest.raises(WorktreeError, match=r"^copy: config/id_rsa"):
        worktrees.bootstrap(worktree, copying("config/*"))
    assert not (worktree.path / "config").exists()


def test_a_hard_link_is_refused(
    run: tuple[Worktrees, Worktree], checkout: Path, outside: Path
) -> None:
    worktrees, worktree = run
    os.link(outside, checkout / "key.env")
    with pytest.raises(WorktreeError, match=r"^copy: key\.env .*hard links"):
        worktrees.bootstrap(worktree, copying("key.env"))
    assert not (worktree.path / "key.env").exists()


def test_a_target_is_never_written_through_a_symlink(
    run: tuple[Worktrees, Worktree], checkout: Path, tmp_path: Path
) -> None:
    """An earlier round's agent left symlinks where copy writes: the file one is replaced (the
    outside file untouched), the directory one is refused."""
    worktrees, worktree = run
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's\n")
    (checkout / ".env").write_text("A=1\n")
    (worktree.path / ".env").symlink_to(victim)
    worktrees.bootstrap(worktree, copying(".env"))
    assert victim.read_text() == "the user's\n"
    assert not (worktree.path / ".env").is_symlink()
    assert (worktree.path / ".env").read_text() == "A=1\n"

    (checkout / "config").mkdir()
    (checkout / "config" / "db.env").write_text("B=2\n")
    (worktree.path / "config").symlink_to(tmp_path)
    with pytest.raises(WorktreeError, match=r"^copy: config/db\.env cannot be written"):
        worktrees.bootstrap(worktree, copying("config/db.env"))
    assert not (tmp_path / "db.env").exists()


@pytest.fixture
def sandbox() -> Sandbox:
    found = probe()
    assert found.sandbox is not None, f"bwrap should work here: {found.warning}"
    return found.sandbox


@pytest.mark.timeout(120)
def test_setup_runs_in_the_sandbox_with_the_scrubbed_environment(
    run: tuple[Worktrees, Worktree],
    checkout: Path,
    outside: Path,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worktrees, worktree = run
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    home = outside.parent.parent
    boxed = for_run(
        sandbox,
        env={"HOME": str(home)},
        locus_dirs=(),
        home_allow=(),
        worktree=worktree.path,
        common_dir=worktrees.common_dir,
    )
    probes = {
        "secret": "env | grep -c sk-canary",
        "ssh": f"cat {outside}",
        "config": "git config core.hooksPath /tmp/evil",
        "checkout": f"echo x >> {checkout}/app.py",
        "network": f"exec 3<>/dev/tcp/127.0.0.1/{port}",
    }
    try:
        for name, command in probes.items():
            setup = RepoConfig.model_validate({"setup": f"{command} && echo escaped > {name}"})
            with pytest.raises(WorktreeError, match="setup command"):
                worktrees.bootstrap(worktree, setup, boxed, scrubbed_env(os.environ))
            assert not (worktree.path / name).exists(), name
    finally:
        listening.close()
    assert "hookspath" not in (checkout / ".git" / "config").read_text().lower()
    ok = RepoConfig.model_validate({"setup": "echo ready > .setup-done"})
    worktrees.bootstrap(worktree, ok, boxed, scrubbed_env(os.environ))
    assert (worktree.path / ".setup-done").read_text() == "ready\n"
