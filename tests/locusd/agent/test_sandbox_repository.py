"""Inside the sandbox the user's repository is read-only but for the run's own worktree: its
config, hooks, refs, objects, the checked-out branch, the ``.git`` file that says where the
repository is, the user's checkout and Locus's run metadata cannot be changed by a command;
``$HOME`` is an empty scratch directory but for allow-listed tool directories. Real bwrap, real
git, a real worktree made by :class:`~locusd.git.worktrees.Worktrees`."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from locusd.agent.commands import CommandResult, run_command, scrubbed_env
from locusd.agent.sandbox import GitLayout, GitLayoutError, Sandbox, for_run, probe
from locusd.git import runmeta
from locusd.git.worktrees import Worktree, Worktrees

pytestmark = pytest.mark.timeout(120)


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def sandbox() -> Sandbox:
    found = probe()
    assert found.sandbox is not None, f"bwrap should work here: {found.warning}"
    return found.sandbox


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "git", "config", "user.email", "dev@example.com")
    sh(path, "git", "config", "user.name", "Dev")
    for text in ("one", "two"):
        (path / "app.py").write_text(f"print('{text}')\n")
        sh(path, "git", "add", ".")
        sh(path, "git", "commit", "-q", "-m", text)
    sh(path, "git", "branch", "feature")
    return path


@pytest.fixture
def run(checkout: Path, tmp_path: Path) -> tuple[Worktrees, Worktree]:
    worktrees = Worktrees(checkout, tmp_path / "worktrees")
    return worktrees, worktrees.create(1, "guarded")


async def inside(command: str, cwd: Path, sandbox: Sandbox) -> CommandResult:
    return await run_command(
        command,
        cwd,
        output_path=cwd.parent / "out.log",
        env=scrubbed_env(os.environ),
        timeout=60,
        sandbox=sandbox,
    )


def repository_state(checkout: Path, worktree: Path) -> tuple[str, ...]:
    common = checkout / ".git"
    refs = sh(checkout, "git", "for-each-ref", "--format=%(refname) %(objectname)")
    hooks = tuple(sorted(p.name for p in (common / "hooks").iterdir()))
    return (
        refs,
        (common / "config").read_text(),
        str(hooks),
        (checkout / "app.py").read_text(),
        (worktree / ".git").read_text(),
        (runmeta.admin_dir(worktree) / "HEAD").read_text(),
        (runmeta.admin_dir(worktree) / runmeta.FILENAME).read_text(),
    )


ATTACKS = {
    "git config": "git config x.y z",
    "git config --worktree": "git config --worktree x.y z",
    "a hook": "echo 'touch /tmp/pwned' > $COMMON/hooks/post-checkout && chmod +x $_",
    "another branch moved": "git branch -f feature HEAD~1",
    "the user's branch moved": "git update-ref refs/heads/main HEAD~1",
    "another ref made": "git update-ref refs/heads/planted HEAD",
    "packed-refs": "echo x >> $COMMON/packed-refs",
    "the user's checkout": "echo 'import os' >> $CHECKOUT/app.py",
    "the checked-out branch switched": "echo 'ref: refs/heads/main' > $ADMIN/HEAD",
    "git checkout of the user's branch": "git checkout -q --ignore-other-worktrees main",
    "the .git file pointed elsewhere": "echo 'gitdir: /tmp' > .git",
    "the .git file removed": "rm .git",
    "Locus's run metadata": "echo '{}' > $ADMIN/locus.json",
    "the commondir file": "echo /tmp > $ADMIN/commondir",
    "the user's objects": "rm -rf $COMMON/objects/*",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_a_command_cannot_change_the_users_repository(
    attack: str, run: tuple[Worktrees, Worktree], checkout: Path, sandbox: Sandbox
) -> None:
    worktrees, worktree = run
    admin = runmeta.admin_dir(worktree.path)
    guarded = sandbox.guarding(worktree.path, worktrees.common_dir)
    before = repository_state(checkout, worktree.path)
    variables = f"COMMON={worktrees.common_dir} ADMIN={admin} CHECKOUT={checkout}"
    done = await inside(f"{variables}; {ATTACKS[attack]}", worktree.path, guarded)
    assert done.exit_code != 0, done.output
    assert repository_state(checkout, worktree.path) == before


async def test_the_agents_own_git_work_still_works(
    run: tuple[Worktrees, Worktree], sandbox: Sandbox
) -> None:
    """Reading history, status (which refreshes the index), diff, restoring a file; a commit
    is refused — objects and refs are read-only — with git's own message."""
    worktrees, worktree = run
    guarded = sandbox.guarding(worktree.path, worktrees.common_dir)
    script = (
        "set -e; echo changed > app.py; git status --porcelain; git diff --stat;"
        " git log --oneline | wc -l; git checkout -- app.py; cat app.py; echo new > n.txt"
    )
    done = await inside(script, worktree.path, guarded)
    assert done.exit_code == 0, done.output
    assert "M app.py" in done.output and "print('two')" in done.output
    assert (worktree.path / "n.txt").read_text() == "new\n"
    committed = await inside("git add n.txt && git commit -qm x", worktree.path, guarded)
    assert committed.exit_code != 0
    assert "permission" in committed.output.lower() or "read-only" in committed.output.lower()


async def test_home_is_empty_but_for_the_allowed_tool_directories(
    tmp_path: Path, sandbox: Sandbox, run: tuple[Worktrees, Worktree]
) -> None:
    worktrees, worktree = run
    home = tmp_path / "home"
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".cargo" / "bin" / "tool").write_text("a toolchain")
    (home / ".unlisted-vault").mkdir()
    (home / ".unlisted-vault" / "token").write_text("s3cret-token")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    (home / ".bashrc").write_text("# the user's\n")
    boxed = for_run(
        sandbox,
        env={"HOME": str(home)},
        locus_dirs=(),
        home_allow=(".cargo",),
        worktree=worktree.path,
        common_dir=worktrees.common_dir,
    )
    assert boxed is not None
    tool = await inside(f"cat {home}/.cargo/bin/tool", worktree.path, boxed)
    assert tool.exit_code == 0 and "a toolchain" in tool.output
    for secret in (".unlisted-vault/token", ".ssh/id_rsa", ".bashrc"):
        shown = await inside(f"cat {home}/{secret}", worktree.path, boxed)
        assert shown.exit_code != 0, secret
    wrote = await inside(
        f"echo evil >> {home}/.bashrc && echo x > {home}/.cargo/bin/tool2", worktree.path, boxed
    )
    assert wrote.exit_code != 0  # the allowed directory is read-only
    assert (home / ".bashrc").read_text() == "# the user's\n"
    assert not (home / ".cargo" / "bin" / "tool2").exists()


async def test_a_worktree_inside_home_and_hidden_state_stays_writable(
    tmp_path: Path, sandbox: Sandbox, checkout: Path
) -> None:
    home = tmp_path / "home"
    state = home / ".local" / "state" / "locus"
    worktrees = Worktrees(checkout, state / "worktrees")
    worktree = worktrees.create(1, "at home")
    boxed = for_run(
        sandbox,
        env={"HOME": str(home)},
        locus_dirs=(state,),
        home_allow=(),
        worktree=worktree.path,
        common_dir=worktrees.common_dir,
    )
    assert boxed is not None
    done = await inside("echo made > new.txt && git status --porcelain", worktree.path, boxed)
    assert done.exit_code == 0, done.output
    assert (worktree.path / "new.txt").read_text() == "made\n"


def test_a_git_file_that_names_another_repository_is_refused(
    run: tuple[Worktrees, Worktree], tmp_path: Path
) -> None:
    worktrees, worktree = run
    other = tmp_path / "other"
    other.mkdir()
    sh(other, "git", "init", "-q")
    sh(
        other,
        "git",
        "-c",
        "user.name=D",
        "-c",
        "user.email=d@x",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    sh(other, "git", "worktree", "add", "-q", str(tmp_path / "other-wt"))
    admin = next((other / ".git" / "worktrees").iterdir())
    (worktree.path / ".git").write_text(f"gitdir: {admin}\n")
    with pytest.raises(GitLayoutError, match="does not name this worktree"):
        GitLayout.of(worktree.path, worktrees.common_dir)


def test_the_daemon_warns_at_start_when_commands_cannot_be_sandboxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No bwrap on PATH (a directory with git only): the daemon's log says so at start, with
    what degrades and how to fix it; with bwrap, nothing is said."""
    from locusd.daemon import Daemon
    from tests.locusd.agentkit import make_config

    with caplog.at_level(logging.WARNING, logger="locusd.daemon"):
        Daemon(make_config(tmp_path / "with")).db.close()
        assert "not sandboxed" not in caplog.text
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "git").symlink_to(shutil.which("git") or "git")
        monkeypatch.setenv("PATH", str(bin_dir))
        Daemon(make_config(tmp_path / "without")).db.close()
    assert "agent commands are not sandboxed" in caplog.text
    assert "install the bubblewrap package" in caplog.text


async def test_a_checkout_that_holds_home_brings_no_secret_back(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A dotfiles repository: the checkout *is* ``$HOME``. Bound read-only for the run, it must
    not bring back what the sandbox hides there."""
    home = tmp_path / "home"
    home.mkdir()
    sh(home, "git", "init", "-q", "-b", "main")
    (home / ".gitignore").write_text(".ssh/\n")
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    sh(home, "git", "add", ".")
    sh(home, "git", "-c", "user.name=D", "-c", "user.email=d@x", "commit", "-q", "-m", "dots")
    worktrees = Worktrees(home, tmp_path / "worktrees")
    worktree = worktrees.create(1, "dotfiles")
    boxed = for_run(
        sandbox,
        env={"HOME": str(home)},
        locus_dirs=(),
        home_allow=(),
        worktree=worktree.path,
        common_dir=worktrees.common_dir,
    )
    assert boxed is not None
    shown = await inside(f"cat {home}/.ssh/id_rsa", worktree.path, boxed)
    assert shown.exit_code != 0 and "PRIVATE KEY" not in shown.output
    listed = await inside(f"cat {home}/.gitignore", worktree.path, boxed)
    assert listed.exit_code == 0 and ".ssh/" in listed.output  # the checkout, read-only
