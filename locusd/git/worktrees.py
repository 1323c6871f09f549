"""One git worktree per run, outside the user's checkout, in a folder named after the run
(``<run-id>-<slug>``), on a detached HEAD at the run's base commit.

The user's working tree, index and current branch are never touched: a worktree shares only the
object database and refs with the user's repository, and all Locus writes there are the
remote-tracking refs of a ``git fetch``, git's own worktree records, the run's ref and — only
for a change the user accepted — the run's branch.

No branch litter: a run makes no branch. Its work, once it ends with changes, is kept as a
snapshot commit under ``refs/locus/runs/<run-id>`` (:data:`RUN_REFS`: outside ``refs/heads``, so
``git branch`` never lists it) until the user commits or discards it; the branch
``locus/<run-id>-<slug>`` (:func:`branch_name`) is made only for an accepted commit
(``locusd/runner/reviews.py``).
Git itself does the work (``git worktree add`` is what the user would run by hand, and it is
fast on large repositories), through :class:`~locusd.git.repo.Repository`; Locus adds a few
cheap calls around it.

Each worktree carries its run's metadata (:mod:`locusd.git.runmeta`) with a state.
:meth:`Worktrees.prune` uses it on daemon start to remove what is no longer needed — never a
worktree with uncommitted, unreviewed or unreported work — and keeps a small pool of finished
worktrees whose ignored build caches make the next run start warm
(:meth:`Worktrees.take_from_pool`).
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from locusd.agent.commands import scrubbed_env
from locusd.agent.sandbox import Sandbox
from locusd.crashpoints import crashpoint
from locusd.git import runmeta
from locusd.git.cli import GitFailed, TimedOut, run
from locusd.git.copying import CopyRefused, copy_confined
from locusd.git.repo import ListedWorktree, Repository, RepositoryError
from locusd.git.runmeta import FREE_STATES, RunMeta, WorktreeState
from locusd.git.worktreeinclude import copy_included
from locusd.repo_config import RepoConfig, copy_pattern_problem

BRANCH_PREFIX = "locus/"
#: Where a run's unaccepted work is kept: ``refs/locus/runs/<run-id>``.
RUN_REFS = "refs/locus/runs/"
#: Task ids as text (local runs: "local-20261124-105959"): what is safe in a branch name and a
#: directory name. A leading '.' and '..' are refused too: git refuses them in ref names.
_TASK_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
FETCH_TIMEOUT = 60.0
SUBMODULE_TIMEOUT = 600.0

_KEEP_REASONS: dict[WorktreeState, str] = {
    "running": "state running: a run is using it, or a crashed run left its work here",
    "review": "state review: the agent's changes are not yet accepted or rejected",
    "committed": "state committed: committed, not yet reported to the cloud (acknowledged)",
}


class WorktreeError(Exception):
    """Something about the repository or the worktree that the user must fix; says how."""


def slugify(title: str, max_length: int = 40) -> str:
    """A branch-safe slug of a task title: lower-case ASCII words joined by '-'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "task"


def _safe_id(task_id: int | str) -> str:
    """The id as text, if it is safe in a ref name and a folder name (``[A-Za-z0-9._-]``)."""
    text = str(task_id)
    if isinstance(task_id, bool) or not _TASK_ID.fullmatch(text) or ".." in text:
        raise WorktreeError(
            f"task id {task_id!r} cannot name a branch: use up to 100 of A-Z a-z 0-9 . _ -"
            " (not starting with '.', no '..')"
        )
    return text


def folder_name(task_id: int | str, title: str) -> str:
    """``<task-id>-<slug>``: the run's worktree folder (also the tail of its branch's name)."""
    return f"{_safe_id(task_id)}-{slugify(title)}"


def branch_name(task_id: int | str, title: str) -> str:
    """``locus/<task-id>-<slug>``: the branch an accepted commit of the run is made on."""
    return f"{BRANCH_PREFIX}{folder_name(task_id, title)}"


def run_ref(task_id: int | str) -> str:
    """``refs/locus/runs/<task-id>``: where the run's unaccepted work is kept."""
    return f"{RUN_REFS}{_safe_id(task_id)}"


@dataclass(frozen=True)
class Worktree:
    path: Path
    #: The branch checked out: "" (a detached HEAD) until the run's change is committed.
    branch: str
    base_commit: str
    #: What the user should know but that did not stop the run (offline fetch, uncommitted
    #: changes left out, submodules missing); not part of the worktree's identity.
    warnings: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Kept:
    path: Path
    branch: str
    reason: str


@dataclass(frozen=True)
class PruneReport:
    """What :meth:`Worktrees.prune` did, for the daemon's log and ``locus daemon status``."""

    vanished: tuple[str, ...]  # git's own lines for records whose directory was gone
    removed: tuple[Path, ...]
    pooled: tuple[Path, ...]  # free, kept for reuse
    kept: tuple[Kept, ...]  # not free: never deleted, with why


_pool_locks: dict[Path, threading.Lock] = {}
_pool_locks_guard = threading.Lock()


def _pool_lock(root: Path) -> threading.Lock:
    """One lock per worktree directory for the whole process: the daemon makes a
    :class:`Worktrees` per run, so a lock on the instance would not do."""
    with _pool_locks_guard:
        return _pool_locks.setdefault(root, threading.Lock())


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _opened(path: Path) -> Repository:
    """The repository (the user's checkout, or a run's worktree) at ``path``."""
    try:
        return Repository(path)
    except RepositoryError as exc:
        raise WorktreeError(str(exc)) from None


def _running(task_id: int | str, title: str, commit: str) -> RunMeta:
    """A run's metadata as it starts."""
    created = runmeta.now()
    return RunMeta(task_id, title, commit, created, "running", created)


def _poolable(worktree: Worktree) -> bool:
    """Whether a free worktree can serve the next run: git cannot move a worktree holding
    submodules ("working trees containing submodules cannot be moved"), and a pooled
    worktree is renamed for each run, so those are removed rather than pooled."""
    return worktree.path.is_dir() and not (worktree.path / ".gitmodules").exists()


def _freed_last_first(found: list[tuple[Worktree, RunMeta]]) -> list[tuple[Worktree, RunMeta]]:
    """Most recently freed (state last changed) first: their caches are the warmest."""

    def key(item: tuple[Worktree, RunMeta]) -> tuple[datetime, str]:
        return datetime.fromisoformat(item[1].updated_at), str(item[0].path)

    return sorted(found, key=key, reverse=True)


def save_work(path: Path, task_id: int | str) -> str:
    """Keep everything in the worktree at ``path`` — commits, changes, new files — as a
    snapshot commit under the run's ref (replacing an earlier one): reachable, and out of
    ``git branch``, whatever later happens to the worktree. Returns the snapshot."""
    ref = run_ref(task_id)
    here = _opened(path)
    try:
        snapshot = here.snapshot(f"Locus run {task_id}: its work, not yet accepted\n")
        here.update_refs([f"update {ref} {snapshot}"])
    except (GitFailed, TimedOut) as exc:
        raise WorktreeError(f"could not keep the work of {path} under {ref}: {exc}") from None
    return snapshot


def drop_work(repo_path: Path, task_id: int | str) -> None:
    """Delete the run's ref (if any): its work was committed or discarded."""
    ref = run_ref(task_id)
    repo = _opened(repo_path)
    if ref in repo.refs(ref):
        repo.update_refs([f"delete {ref}"])


class Worktrees:
    """The worktrees of one repository, kept under ``root`` (outside the repository)."""

    def __init__(self, repo_path: Path, root: Path, *, fetch_timeout: float = FETCH_TIMEOUT):
        self._repo = _opened(repo_path)
        self.fetch_timeout = fetch_timeout
        self.checkout = self._repo.path
        self.common_dir = self._repo.common_dir
        self.root = root.resolve()
        if _is_within(self.root, self.checkout):
            raise WorktreeError(
                f"the worktree directory {self.root} is inside the checkout {self.checkout}:"
                " choose one outside it, so runs never touch your working tree"
            )

    # -- starting a run ----------------------------------------------------------------------

    def resolve(self, base: str = "HEAD") -> str:
        """The commit ``base`` names; works on a detached HEAD too."""
        commit = self._repo.resolve(base)
        if commit is None:
            hint = ": make a first commit" if base == "HEAD" else ""
            raise WorktreeError(f"{base!r} is not a commit in {self.checkout}{hint}")
        return commit

    def create(self, task_id: int | str, title: str, base: str = "HEAD") -> Worktree:
        """A new worktree (a detached HEAD: no branch) from a fresh base, with submodules
        checked out and LFS files left as pointers. Refuses to reuse a path.

        The base: when the repository has a remote, it is fetched first (offline: a warning,
        and local refs). For ``base="HEAD"`` the run starts from the current branch's upstream
        when that is strictly ahead of HEAD (HEAD is its ancestor: the user just has not
        pulled), so the agent neither redoes nor conflicts with work already upstream;
        otherwise from HEAD — the user's own commits (ahead or diverged) are what they asked
        for, and a detached HEAD has no upstream. Any other ``base`` is used as it is.
        Uncommitted changes in the user's checkout are never part of a run (a warning says so).
        """
        path = self._new_path(task_id, title)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._starting(base) as (commit, warnings):
            self._checked("worktree add", self.checkout, self._repo.add_worktree, path, commit)
        return self._started(path, task_id, title, commit, warnings)

    def _new_path(self, task_id: int | str, title: str) -> Path:
        path = self.root / folder_name(task_id, title)
        if path.exists():
            raise WorktreeError(
                f"{path} already exists: remove it, or pick another task id"
                " (prune removes only finished runs' worktrees)"
            )
        return path

    @contextmanager
    def _starting(self, base: str) -> Iterator[tuple[str, list[str]]]:
        """Fetch and choose the base commit (see :meth:`create`); while the caller checks it
        out, look for uncommitted changes in the user's checkout (a ``git status`` over the
        whole tree: in parallel it costs no wall time). The warnings list is complete when the
        ``with`` block has ended."""
        warnings: list[str] = []
        remote = self._remote()
        if remote is not None:
            warning = self._fetch(remote)
            if warning:
                warnings.append(warning)
        commit = self._base_commit(base)
        with ThreadPoolExecutor(max_workers=1) as pool:
            dirty = pool.submit(self._repo.has_changes, read_only=True)
            yield commit, warnings
            if dirty.result():
                warnings.append(
                    f"{self.checkout} has uncommitted changes: the run starts from commit"
                    f" {commit[:12]} without them (commit them first if the run needs them)"
                )

    def _base_commit(self, base: str) -> str:
        if base != "HEAD":
            return self.resolve(base)
        head = self.resolve("HEAD")
        up = self._repo.upstream()  # None on a detached HEAD, without one, or when it is gone
        if up is None or up == head:
            return head
        return up if self._repo.is_ancestor(head, up) else head

    def _started(
        self,
        path: Path,
        task_id: int | str,
        title: str,
        commit: str,
        warnings: builtins.list[str],
    ) -> Worktree:
        """After the checkout: metadata (state running), submodules, LFS note."""
        runmeta.write(runmeta.admin_dir(path), _running(task_id, title, commit))
        warnings += self._after_checkout(path)
        return Worktree(path, "", commit, tuple(warnings))

    def _remote(self) -> str | None:
        """The remote to fetch: the current branch's upstream remote, else origin, else the
        first one; None without remotes."""
        remotes = list(self._repo.remotes())
        if len(remotes) <= 1:
            return remotes[0] if remotes else None
        current = self._repo.upstream_remote()
        if current in remotes:
            return current
        return "origin" if "origin" in remotes else remotes[0]

    def _fetch(self, remote: str) -> str | None:
        """Fetch ``remote``; a warning instead of an error when that fails (offline)."""
        try:
            done = self._repo.fetch(remote, self.fetch_timeout)
        except TimedOut:
            reason = f"no answer within {self.fetch_timeout:.0f} s"
        else:
            if done.returncode == 0:
                return None
            lines = done.stderr.strip().splitlines()
            reason = lines[-1] if lines else f"exit code {done.returncode}"
        return (
            f"could not fetch {remote} ({reason}): the run starts from local refs,"
            " which may be behind the remote"
        )

    def _after_checkout(self, path: Path) -> list[str]:
        """Submodules in, and a note about LFS pointers; both are warnings, not failures: a run
        can still be useful without them."""
        warnings: list[str] = []
        if (path / ".gitmodules").is_file():
            try:
                done = _opened(path).update_submodules(SUBMODULE_TIMEOUT)
                failure = done.tail(500) if done.returncode != 0 else None
            except TimedOut as exc:
                failure = str(exc)
            if failure is not None:
                warnings.append(
                    f"submodules are not checked out ({failure}); run `git submodule update"
                    f" --init --recursive` in {path} if the run needs them"
                )
        attributes = path / ".gitattributes"
        if attributes.is_file() and "filter=lfs" in attributes.read_text(errors="replace"):
            warnings.append(
                "Git LFS files are pointers in this worktree (runs download no LFS content);"
                f" run `git lfs pull` in {path} if the run needs them"
            )
        return warnings

    def bootstrap(
        self,
        worktree: Worktree,
        config: RepoConfig,
        sandbox: Sandbox | None = None,
        env: Mapping[str, str] | None = None,
    ) -> builtins.list[str]:
        """Copy the files the repository names (ignored ones such as .env, which a checkout of
        the commit lacks: ``copy`` in .locus.toml, then :mod:`~locusd.git.worktreeinclude`)
        and run its setup command in the worktree — in ``sandbox`` (the run's own) with
        ``env`` (scrubbed): both files are repository content, as untrusted as anything the
        agent writes. Returns warnings (.worktreeinclude's files that were not copied)."""
        sources = self._copy_sources(config.copy_files)
        for source in sources:
            try:
                copy_confined(self.checkout, worktree.path, source)
            except CopyRefused as exc:
                raise WorktreeError(
                    f"copy: {exc}. Name only regular files inside the checkout in copy"
                    " (.locus.toml), or fix the file"
                ) from None
        warnings = copy_included(self.checkout, worktree.path, already=set(sources))
        if config.setup:
            self._run_setup(worktree, config.setup, config.setup_timeout, sandbox, env)
        return warnings

    def _copy_sources(self, patterns: builtins.list[str]) -> builtins.list[str]:
        """The checkout's files ``copy`` names, relative, each pattern checked lexically first
        (:func:`locusd.repo_config.copy_pattern_problem`); the confined copy checks the rest."""
        found: dict[str, None] = {}
        for pattern in patterns:
            problem = copy_pattern_problem(pattern)
            if problem is not None:
                raise WorktreeError(f"copy: {problem}")
            for source in sorted(self.checkout.glob(pattern)):
                relative = source.relative_to(self.checkout)
                if ".git" not in relative.parts and not source.is_dir():
                    found[str(relative)] = None
        return builtins.list(found)

    def _run_setup(
        self,
        worktree: Worktree,
        command: str,
        timeout: float,
        sandbox: Sandbox | None,
        env: Mapping[str, str] | None,
    ) -> None:
        argv = ["bash", "-c", command]
        try:
            # The repository's own setup command, from its .locus.toml: in the run's sandbox
            # when there is one; a timeout kills its whole process group (npm, pip, children).
            done = run(
                sandbox.wrap(argv, worktree.path) if sandbox is not None else argv,
                worktree.path,
                timeout=timeout,
                env=scrubbed_env(os.environ) if env is None else env,
            )
        except TimedOut:
            raise WorktreeError(f"setup command {command!r} took over {timeout:.0f} s") from None
        if done.returncode != 0:
            raise WorktreeError(
                f"setup command {command!r} failed with exit code {done.returncode}:\n"
                + done.tail()
            )

    # -- reuse and the pool ------------------------------------------------------------------

    def reuse(
        self, worktree: Worktree, task_id: int | str, title: str, base: str = "HEAD"
    ) -> Worktree:
        """Point a finished run's worktree at a new task instead of creating one anew: moved
        to the new run's folder name, a detached HEAD at a fresh base (as in :meth:`create`),
        tracked files checked out — while ignored files (node_modules, target/, .venv) stay,
        so build caches are warm. A branch of the old run stays, unless it is an older
        Locus's branch with no commit of its own. Refuses while the worktree holds
        uncommitted work or untracked files (commit or discard them first). Runs normally get
        one through :meth:`take_from_pool`."""
        if self.is_dirty(worktree):
            raise WorktreeError(
                f"{worktree.path} has uncommitted changes: commit or discard them before reuse"
            )
        return self._reuse_clean(worktree, self.metadata(worktree), task_id, title, base)

    def _reuse_clean(
        self,
        worktree: Worktree,
        before: RunMeta | None,
        task_id: int | str,
        title: str,
        base: str,
    ) -> Worktree:
        path = worktree.path
        self._keep_detached_commits(worktree, before)
        renamed = self.root / folder_name(task_id, title)
        if renamed != path:
            renamed = self._new_path(task_id, title)
        with self._starting(base) as (commit, warnings):
            if renamed != path:
                # Named after its current run; the metadata (in git's admin dir, which a move
                # keeps) already names that run, so a kill between these steps loses nothing.
                self._checked("worktree move", path, self._repo.move_worktree, path, renamed)
                crashpoint("pool.moved")
            # No `git clean`: the worktree was just found clean, so there is nothing untracked
            # to remove but ignored files (the caches), and whatever appeared since is kept.
            here = _opened(renamed)
            self._checked("checkout", renamed, here.checkout_detached, commit)
        if before is not None:
            self._drop_litter_branch(worktree.branch, before.base_commit)
        return self._started(renamed, task_id, title, commit, warnings)

    def _drop_litter_branch(self, branch: str, base_commit: str) -> None:
        """An older Locus made a ``locus/…`` branch for every run: once its worktree is reused
        or removed, such a branch with no commit of its own (still at the run's base) is
        deleted; one holding commits stays — it may be work."""
        if not branch.startswith(BRANCH_PREFIX):
            return
        # Refused when it moved on (commits of its own) or is gone: then kept as it is.
        with contextlib.suppress(GitFailed):
            self._repo.update_refs([f"delete refs/heads/{branch} {base_commit}"])

    def pooled(self) -> list[Worktree]:
        """Free worktrees (finished runs: done or discarded, nothing uncommitted), the most
        recently freed — warmest — first."""
        return [w for w, _ in self._free_candidates() if not self.is_dirty(w)]

    def take_from_pool(self, task_id: int | str, title: str, base: str = "HEAD") -> Worktree | None:
        """A pooled worktree reused for this task (state running), or None when the pool is
        empty (then :meth:`create` one). Two callers in this process never get the same
        worktree: choosing one and marking it running happen under a lock per worktree
        directory (the fetch and checkout after that do not hold it)."""
        folder_name(task_id, title)  # a bad id fails before a worktree is claimed
        with _pool_lock(self.root):
            chosen = next(
                ((w, m) for w, m in self._free_candidates() if not self.is_dirty(w)), None
            )
            if chosen is None:
                return None
            worktree, freed = chosen
            admin = runmeta.admin_dir(worktree.path)
            # From here on the metadata names the new run (at the commit still checked out):
            # after a kill -9 at any later step, recovery finds the worktree by it.
            head = _opened(worktree.path).resolve("HEAD") or freed.base_commit
            runmeta.write(admin, _running(task_id, title, head))
        crashpoint("pool.claimed")
        try:
            return self._reuse_clean(worktree, freed, task_id, title, base)
        except BaseException:
            runmeta.write(admin, freed)  # back in the pool, as it was
            raise

    def _free_candidates(self) -> list[tuple[Worktree, RunMeta]]:
        """Poolable worktrees in a free state (dirty or not), the most recently freed first."""
        found = [
            (w, m)
            for w, m, locked in self._listed(self._linked())
            if m is not None
            and m.state in FREE_STATES
            and not locked
            and _poolable(w)
            # Only this root's: a worktree left under another worktree_dir (the user changed
            # it) cannot be moved here, and belongs to that directory's pool.
            and w.path.resolve().parent == self.root
        ]
        return _freed_last_first(found)

    # -- state ---------------------------------------------------------------------------------

    def metadata(self, worktree: Worktree) -> RunMeta | None:
        """The run's metadata, or None when it is missing or unreadable."""
        try:
            return runmeta.read(runmeta.admin_dir(worktree.path))
        except (OSError, ValueError):
            return None

    def state(self, worktree: Worktree) -> WorktreeState | None:
        meta = self.metadata(worktree)
        return None if meta is None else meta.state

    def set_state(self, worktree: Worktree, state: WorktreeState) -> None:
        """Record where the run is (running → review → committed → done, or discarded):
        :meth:`prune` and the pool go by it."""
        meta = self.metadata(worktree)
        if meta is None:
            raise WorktreeError(
                f"{worktree.path} has no Locus metadata: it is not a Locus worktree, or it was"
                " made by hand"
            )
        try:
            updated = meta.with_state(state)
        except ValueError as exc:
            raise WorktreeError(str(exc)) from None
        runmeta.write(runmeta.admin_dir(worktree.path), updated)

    # -- the run's ref -----------------------------------------------------------------------

    def finish(self, worktree: Worktree, task_id: int | str, *, kept: bool) -> None:
        """The run ended: with changes (``kept``), its work is saved under its ref and the
        worktree waits for review; without, it is free (and the run has no ref)."""
        if kept:
            save_work(worktree.path, task_id)
            self.set_state(worktree, "review")
        else:
            self.set_state(worktree, "discarded")
            drop_work(self.checkout, task_id)

    def resume(self, worktree: Worktree, task_id: int | str) -> None:
        """A further round (after a review) continues in ``worktree`` as run ``task_id``: the
        metadata names it, and the previous round's ref becomes this run's."""
        meta = self.metadata(worktree)
        if meta is None:
            raise WorktreeError(
                f"{worktree.path} has no Locus metadata: it is not a Locus worktree, or it was"
                " made by hand"
            )
        new_ref = run_ref(task_id)
        runmeta.write(
            runmeta.admin_dir(worktree.path),
            replace(meta, task_id=task_id).with_state("running"),
        )
        old_ref = run_ref(meta.task_id)
        saved = self._repo.refs(old_ref).get(old_ref)
        if saved is not None and old_ref != new_ref:
            self._repo.update_refs([f"update {new_ref} {saved}", f"delete {old_ref} {saved}"])

    # -- listing, removing, pruning --------------------------------------------------------

    def list(self) -> list[Worktree]:
        """The Locus worktrees of this repository: those with Locus metadata, in Locus's
        worktree folder, or on an older Locus's ``locus/`` branch (the user's own are left
        out)."""
        return [w for w, _, _ in self._listed(self._linked())]

    def of_run(self, task_id: int | str) -> Worktree | None:
        """The worktree made for run ``task_id``, even one a crash left before the run could
        name it: its metadata names the run, or (killed before the metadata was written) its
        folder does (``<id>-…``: the daemon's run ids have a fixed format, so none is another's
        prefix), or (an older Locus's) its branch does."""
        folder = f"{_safe_id(task_id)}-"
        for worktree, meta, _ in self._listed(self._linked()):
            if meta is not None:
                if str(meta.task_id) == str(task_id):
                    return worktree
            elif worktree.path.name.startswith(folder) or worktree.branch.startswith(
                BRANCH_PREFIX + folder
            ):
                return worktree
        return None

    def _linked(self) -> builtins.list[ListedWorktree]:
        """The repository's linked worktrees (the main checkout left out)."""
        return [w for w in self._repo.worktrees() if not w.main]

    def _listed(
        self, records: builtins.list[ListedWorktree]
    ) -> builtins.list[tuple[Worktree, RunMeta | None, bool]]:
        """(worktree, metadata, locked) of the Locus worktrees among ``records``."""
        admin_dirs = self._admin_dirs()
        found: list[tuple[Worktree, RunMeta | None, bool]] = []
        for record in records:
            admin = admin_dirs.get(record.path)
            meta = runmeta.read(admin) if admin else None
            ours = record.path.parent == self.root or record.branch.startswith(BRANCH_PREFIX)
            if meta is None and not ours:
                continue
            base = meta.base_commit if meta else record.head
            found.append((Worktree(record.path, record.branch, base), meta, record.locked))
        return found

    def _admin_dirs(self) -> dict[Path, Path]:
        """Worktree path → its admin dir, from each admin dir's ``gitdir`` file (which names the
        worktree's ``.git``): works when the worktree's directory is gone, too."""
        found: dict[Path, Path] = {}
        for gitdir in (self.common_dir / "worktrees").glob("*/gitdir"):
            try:
                target = Path(gitdir.read_text(encoding="utf-8").strip())
            except OSError:
                continue
            found[(gitdir.parent / target).parent] = gitdir.parent
        return found

    def is_dirty(self, worktree: Worktree) -> bool:
        """Uncommitted changes, staged or not, untracked files that are not ignored, or any of
        that inside a submodule."""
        if not worktree.path.is_dir():
            raise WorktreeError(f"{worktree.path} does not exist: prune forgets it")
        return _opened(worktree.path).has_changes(all_submodules=True)

    def remove(self, worktree: Worktree, *, force: bool = False) -> None:
        """Remove the worktree (a branch stays: it may hold committed, unreported work; on a
        detached HEAD, commits no ref holds are first kept under the run's ref). Refuses
        while it holds uncommitted work, unless ``force``."""
        self._keep_detached_commits(worktree, self.metadata(worktree))
        if not force and (worktree.path / ".gitmodules").is_file():
            # git refuses any worktree with submodules without --force, so check here.
            if self.is_dirty(worktree):
                raise self._dirty(worktree)
            force = True
        # Without --force, git makes the same check as is_dirty (and refuses): one status
        # instead of two.
        done = self._repo.remove_worktree(worktree.path, force=force)
        if done.returncode != 0:
            if not force and worktree.path.exists() and self.is_dirty(worktree):
                raise self._dirty(worktree)
            raise WorktreeError(f"could not remove {worktree.path}: {done.tail(500)}")

    def _keep_detached_commits(self, worktree: Worktree, meta: RunMeta | None) -> None:
        """Nothing lost: commits made on a worktree's detached HEAD (by hand, or by the agent)
        that no ref has would be unreachable once the worktree is gone or reused; they go
        under the ref of the run ``meta`` names."""
        if worktree.branch or not worktree.path.is_dir():
            return
        head = _opened(worktree.path).resolve("HEAD")
        if head is None or head == worktree.base_commit or self._repo.is_referenced(head):
            return
        owner = meta.task_id if meta is not None else worktree.path.name
        self._repo.update_refs([f"update {run_ref(owner)} {head}"])

    @staticmethod
    def _dirty(worktree: Worktree) -> WorktreeError:
        return WorktreeError(
            f"{worktree.path} has uncommitted changes: review or discard them first"
        )

    def prune(self, keep_pool: int = 2) -> PruneReport:
        """Run on daemon start. Forget worktrees whose directory is gone (``git worktree
        prune``); of the free ones (done or discarded, nothing uncommitted) keep the
        ``keep_pool`` most recently freed as the pool and remove the rest. Everything else —
        running (a crashed run's work), review, committed, unknown metadata, uncommitted
        changes, locked — is kept, with the reason in the report."""
        if keep_pool < 0:
            raise ValueError("keep_pool must be >= 0")
        with _pool_lock(self.root):  # nothing is taken from the pool meanwhile
            vanished = self._repo.prune_worktrees()
            kept: list[Kept] = []
            free: list[tuple[Worktree, RunMeta]] = []
            records = self._linked()
            for worktree, meta, locked in self._listed(records):
                reason = self._keep_reason(worktree, meta, locked)
                if reason is not None:
                    kept.append(Kept(worktree.path, worktree.branch, reason))
                elif meta is not None:
                    free.append((worktree, meta))
            free = _freed_last_first(free)
            pool = [w for w, _ in free if _poolable(w)][:keep_pool]
            removed: list[Path] = []
            for worktree, meta in free:
                if worktree in pool:
                    continue
                try:
                    self.remove(worktree)
                except WorktreeError as exc:
                    kept.append(Kept(worktree.path, worktree.branch, str(exc)))
                else:
                    removed.append(worktree.path)
                    self._drop_litter_branch(worktree.branch, meta.base_commit)
            kept += self._strays({record.path for record in records})
        return PruneReport(
            vanished=tuple(vanished),
            removed=tuple(removed),
            pooled=tuple(w.path for w in pool),
            kept=tuple(kept),
        )

    def _keep_reason(self, worktree: Worktree, meta: RunMeta | None, locked: bool) -> str | None:
        if locked:
            return "locked (git worktree unlock releases it)"
        if meta is None:
            return (
                "no readable Locus metadata: check it and remove it by hand"
                f" (git worktree remove {worktree.path}) if nothing in it is needed"
            )
        if meta.state not in FREE_STATES:
            return _KEEP_REASONS[meta.state]
        if not worktree.path.is_dir():
            return "its directory is missing"
        if self.is_dirty(worktree):
            return f"state {meta.state}, but it has uncommitted changes"
        return None

    def _strays(self, registered: set[Path]) -> builtins.list[Kept]:
        """Directories under ``root`` that git does not know as worktrees (left by a crash
        during ``worktree add``, or put there by hand): reported, never deleted."""
        if not self.root.is_dir():
            return []
        return [
            Kept(entry, "", "not a registered git worktree: remove it by hand if unneeded")
            for entry in sorted(self.root.iterdir())
            if entry.is_dir() and entry not in registered
        ]

    @staticmethod
    def _checked(what: str, cwd: Path, step: Callable[..., None], *args: object) -> None:
        try:
            step(*args)
        except GitFailed as exc:
            raise WorktreeError(f"git {what} failed in {cwd}: {exc.done.tail(500)}") from None
