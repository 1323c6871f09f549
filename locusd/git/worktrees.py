"""One git worktree per run, on branch ``locus/<task-id>-<slug>``, outside the user's checkout.

The user's working tree, index and current branch are never touched: a worktree shares only the
object database and refs with the user's repository. Git itself (through gitpython's command
wrapper) does the work; ``git worktree add`` is what the user would run by hand, and it is
fast on large repositories.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import git

from locusd.repo_config import RepoConfig

BRANCH_PREFIX = "locus/"


class WorktreeError(Exception):
    """Something about the repository or the worktree that the user must fix; says how."""


def slugify(title: str, max_length: int = 40) -> str:
    """A branch-safe slug of a task title: lower-case ASCII words joined by '-'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "task"


def branch_name(task_id: int, title: str) -> str:
    return f"{BRANCH_PREFIX}{task_id}-{slugify(title)}"


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str
    base_commit: str


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


class Worktrees:
    """The worktrees of one repository, kept under ``root`` (outside the repository)."""

    def __init__(self, repo_path: Path, root: Path) -> None:
        if shutil.which("git") is None:
            raise WorktreeError(
                "git is not installed or not on PATH: install git (e.g. apt-get install git)"
            )
        try:
            self.repo = git.Repo(repo_path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise WorktreeError(f"{repo_path} is not inside a git repository") from None
        if self.repo.bare:
            raise WorktreeError(
                f"{repo_path} is a bare repository: point Locus at a checkout (git clone it first)"
            )
        assert self.repo.working_tree_dir is not None
        self.checkout = Path(self.repo.working_tree_dir).resolve()
        self.root = root.resolve()
        if _is_within(self.root, self.checkout):
            raise WorktreeError(
                f"the worktree directory {self.root} is inside the checkout {self.checkout}:"
                " choose one outside it, so runs never touch your working tree"
            )

    def resolve(self, base: str = "HEAD") -> str:
        """The commit a run starts from; works on a detached HEAD too."""
        try:
            return str(self.repo.git.rev_parse("--verify", f"{base}^{{commit}}"))
        except git.GitCommandError:
            raise WorktreeError(f"{base!r} is not a commit in {self.checkout}") from None

    def create(self, task_id: int, title: str, base: str = "HEAD") -> Worktree:
        """A new worktree on a new branch from ``base``. Refuses to reuse a branch or path."""
        commit = self.resolve(base)
        branch = branch_name(task_id, title)
        path = self.root / branch.removeprefix(BRANCH_PREFIX)
        if path.exists():
            raise WorktreeError(f"{path} already exists: remove it, or prune stale worktrees")
        if branch in (head.name for head in self.repo.heads):
            raise WorktreeError(
                f"branch {branch} already exists: delete it or pick another task id"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.repo.git.worktree("add", "-b", branch, str(path), commit)
        return Worktree(path=path, branch=branch, base_commit=commit)

    def bootstrap(self, worktree: Worktree, config: RepoConfig) -> None:
        """Copy the files the repository names (ignored ones such as .env, which a checkout of
        the commit lacks) and run its setup command in the worktree."""
        for pattern in config.copy_files:
            for source in sorted(self.checkout.glob(pattern)):
                relative = source.relative_to(self.checkout)
                # Regular files only, and never through a symlink: nothing outside the
                # checkout is copied in.
                if source.is_symlink() or not source.is_file() or ".git" in relative.parts:
                    continue
                target = worktree.path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        if config.setup:
            self._run_setup(worktree, config.setup, config.setup_timeout)

    def _run_setup(self, worktree: Worktree, command: str, timeout: float) -> None:
        try:
            # The repository's own setup command, from its .locus.toml: run as the user would.
            done = subprocess.run(  # noqa: S603
                ["bash", "-c", command],  # noqa: S607
                cwd=worktree.path,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WorktreeError(f"setup command {command!r} took over {timeout:.0f} s") from None
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-2000:]
            raise WorktreeError(
                f"setup command {command!r} failed with exit code {done.returncode}:\n{tail}"
            )

    def reuse(self, worktree: Worktree, task_id: int, title: str, base: str = "HEAD") -> Worktree:
        """Point a finished run's worktree at a new task instead of creating one anew: a new
        branch from ``base``, tracked files reset, untracked files removed — but ignored
        files (node_modules, target/, .venv) stay, so build caches are warm. Refuses while
        the worktree holds uncommitted work (commit or discard it first)."""
        if self.is_dirty(worktree):
            raise WorktreeError(
                f"{worktree.path} has uncommitted changes: commit or discard them before reuse"
            )
        commit = self.resolve(base)
        branch = branch_name(task_id, title)
        if branch in (head.name for head in self.repo.heads):
            raise WorktreeError(
                f"branch {branch} already exists: delete it or pick another task id"
            )
        tree = git.Repo(worktree.path).git
        tree.checkout("-q", "-b", branch, commit)
        tree.reset("-q", "--hard", commit)
        tree.clean("-q", "-d", "-f")  # without -x: ignored files survive
        return Worktree(path=worktree.path, branch=branch, base_commit=commit)

    def list(self) -> list[Worktree]:
        """The Locus worktrees of this repository (the user's own are left out)."""
        found: list[Worktree] = []
        for block in str(self.repo.git.worktree("list", "--porcelain")).split("\n\n"):
            fields = dict(line.split(" ", 1) for line in block.splitlines() if " " in line)
            branch = fields.get("branch", "").removeprefix("refs/heads/")
            if branch.startswith(BRANCH_PREFIX):
                found.append(Worktree(Path(fields["worktree"]), branch, fields.get("HEAD", "")))
        return found

    def is_dirty(self, worktree: Worktree) -> bool:
        """Uncommitted changes, staged or not, or untracked files that are not ignored."""
        return git.Repo(worktree.path).is_dirty(untracked_files=True)

    def remove(self, worktree: Worktree, *, force: bool = False) -> None:
        """Remove the worktree (the branch stays: it may hold committed, unreported work).
        Refuses while it holds uncommitted work, unless ``force``."""
        if not force and self.is_dirty(worktree):
            raise WorktreeError(
                f"{worktree.path} has uncommitted changes: review or discard them first"
            )
        args = ["remove", str(worktree.path)] + (["--force"] if force else [])
        self.repo.git.worktree(*args)
