"""One git repository — a checkout or a linked worktree — and everything Locus asks git about
it or has git do in it. The only place Locus runs git (``tests/locusd/git/test_no_git_argv``
keeps it so).

Built on GitPython: ``git.Repo`` finds the repository from a path without running git, and
every command goes through ``repo.git``, GitPython's command wrapper (``repo.git.worktree(
"add", ...)`` becomes ``git worktree add ...``). Its process handling is replaced
(:class:`_LocusGit`), because two of GitPython's defaults do not hold for a daemon:

* ``Git.execute`` starts every child from ``os.environ.copy()``; ``env=`` and
  ``update_environment`` can add variables but never remove one. A ``GIT_DIR`` or
  ``GIT_INDEX_FILE`` the daemon inherited (started from a git hook) would reach git — and
  ``git worktree add`` hands ``GIT_INDEX_FILE`` on to the checkout it runs in the new
  worktree, which would write the user's index.
* ``kill_after_timeout`` SIGKILLs the descendants ``pgrep -P`` finds at that moment, then
  waits for the output pipes to close: a grandchild that was re-parented (a shell's
  background job) is missed, and the call blocks until it exits. (Measured: a 1 s timeout
  returned after 8 s, the grandchild still running.)

So each command runs through :func:`locusd.git.cli.run`: its own process group killed whole on
a timeout, an environment without the repository variables, no terminal prompt, no LFS
downloads. Answers that are one git command are one git command — GitPython's object database
(a long-lived ``git cat-file`` per repository) and its Python config parser are not used.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locusd.git.cli import REPOSITORY_ENV, Finished, GitFailed, git_env, hardened_env, run

# GitPython looks for git when it is imported and raises ImportError without it; Locus says
# itself that git is missing, and how to fix it (Repository), so the import must not fail.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
import git

NO_GIT = (
    "git is not installed or not on PATH: install git (e.g. apt-get install git)"
    " or start the daemon with a PATH that includes it"
)
#: Who made a :meth:`Repository.snapshot` (whatever the user's git identity, or none).
SNAPSHOT_AUTHOR = {
    f"GIT_{who}_{what}": value
    for who in ("AUTHOR", "COMMITTER")
    for what, value in (("NAME", "Locus"), ("EMAIL", "locus@localhost"))
}
#: What :meth:`_LocusGit.execute` understands of GitPython's execute options.
_EXECUTE_OPTIONS = frozenset(
    {"with_extended_output", "with_exceptions", "kill_after_timeout", "strip_newline_in_stdout"}
)


class RepositoryError(Exception):
    """The path is not a repository Locus can work in; says how to fix it."""


class _LocusGit(git.Git):
    """GitPython's command wrapper, running each command through :func:`locusd.git.cli.run`
    (see the module docstring for why). Commands run to completion: GitPython's streaming
    (``as_process``, ``output_stream``) is refused rather than run without a timeout."""

    def execute(self, *args: Any, **options: Any) -> Any:
        command, istream = (*args, options.pop("istream", None))[:2]
        env = options.pop("env", None) or {}
        secrets = bool(options.pop("with_secrets", False))  # Locus's own: a fetch or a push
        unknown = set(options) - _EXECUTE_OPTIONS
        if unknown or len(args) > 2 or isinstance(command, str):
            raise TypeError(f"Repository runs argv lists to completion; not {sorted(unknown)}")
        inherited = {k: v for k, v in self.environment().items() if k not in REPOSITORY_ENV}
        argv, cwd = [str(arg) for arg in command], Path(self.working_dir or ".")
        # No hook, filter, fsmonitor… the repository's config names (locusd/git/programs.py).
        hardened = hardened_env(argv, cwd, {**git_env(secrets=secrets), **inherited, **env})
        done = run(
            argv, cwd, timeout=options.get("kill_after_timeout"), env=hardened, stdin=istream
        )
        stdout, stderr = done.stdout, done.stderr.removesuffix("\n")
        if options.get("strip_newline_in_stdout", True):
            stdout = stdout.removesuffix("\n")
        if options.get("with_exceptions", True) and done.returncode != 0:
            raise git.GitCommandError(command, done.returncode, stderr, stdout)
        if options.get("with_extended_output", False):
            return done.returncode, stdout, stderr
        return stdout


class _LocusRepo(git.Repo):
    GitCommandWrapperType = _LocusGit


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    #: (key, value) in order, as ``git interpret-trailers`` reads the message's last paragraph.
    trailers: tuple[tuple[str, str], ...]

    def has_trailer(self, key: str, value: str) -> bool:
        """``Locus-Task: 42`` → ``has_trailer("Locus-Task", "42")``; keys ignore case."""
        return any(k.lower() == key.lower() and v == value for k, v in self.trailers)


@dataclass(frozen=True)
class ListedWorktree:
    """One record of ``git worktree list``."""

    path: Path
    head: str  # "" for a main checkout without commits
    branch: str  # without ``refs/heads/``; "" when detached
    locked: bool
    main: bool


def _common_dir(git_dir: Path) -> Path:
    """Where refs and objects live: a linked worktree's ``commondir`` file names it (read here
    rather than from GitPython, which takes ``GIT_COMMON_DIR`` from the environment)."""
    try:
        relative = (git_dir / "commondir").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return git_dir
    return (git_dir / relative).resolve()


def _opened(path: Path) -> tuple[_LocusRepo, Path, Path]:
    """GitPython's repository for ``path``, its working tree and its git dir (both resolved)."""
    if shutil.which("git") is None:
        raise RepositoryError(NO_GIT)
    if not path.is_dir():
        raise RepositoryError(f"{path} is not inside a git repository: no such directory")
    resolved = path.resolve()
    try:
        repo = _LocusRepo(resolved, search_parent_directories=True, expand_vars=False)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepositoryError(
            f"{path} is not inside a git repository: point Locus at a clone (or run git init there)"
        ) from None
    if repo.working_tree_dir is None:
        raise RepositoryError(
            f"{path} is a bare repository: point Locus at a checkout (git clone it first)"
        )
    git_dir = Path(repo.git_dir).resolve()
    if resolved == git_dir or git_dir in resolved.parents:
        raise RepositoryError(f"{path} is inside a .git directory: point Locus at the checkout")
    # Found from a resolved path by its .git entry: one of that path's parents.
    return repo, Path(repo.working_tree_dir), git_dir


class Repository:
    """A checkout or linked worktree found from ``path`` (or a directory inside it). Opening
    one runs no process; each method is one git command unless it says otherwise."""

    def __init__(self, path: Path) -> None:
        self._repo, self.path, self.git_dir = _opened(path)
        self.common_dir = _common_dir(self.git_dir)

    @classmethod
    def init(cls, path: Path, branch: str) -> Repository:
        """``git init -b branch`` (the directory may hold files already)."""
        _LocusRepo.init(path, mkdir=True, expand_vars=False, initial_branch=branch)
        return cls(path)

    # -- running any command -----------------------------------------------------------------

    def run(
        self,
        *args: str,
        timeout: float | None = None,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        network: bool = False,
    ) -> Finished:
        """``git args`` here, whatever its exit code; :class:`~locusd.git.cli.TimedOut` after
        ``timeout`` seconds (the command and its children killed). ``stdin`` is sent as the
        command's input (``-`` arguments); ``env`` adds variables (``GIT_INDEX_FILE``).
        Secret variables are left out unless ``network`` (a fetch or push for the user)."""
        with _input_file(stdin) as istream:
            status, stdout, stderr = self._repo.git.execute(
                [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
                istream,
                with_extended_output=True,
                with_exceptions=False,
                strip_newline_in_stdout=False,
                kill_after_timeout=timeout,
                env=dict(env or {}),
                with_secrets=network,
            )
        return Finished(status, stdout, stderr)

    def output(self, *args: str, timeout: float | None = None, stdin: str | None = None) -> str:
        """stdout of ``git args``; raises :class:`~locusd.git.cli.GitFailed` on a non-zero
        exit."""
        done = self.run(*args, timeout=timeout, stdin=stdin)
        if done.returncode != 0:
            raise GitFailed(["git", *args], done)
        return done.stdout

    # -- refs ----------------------------------------------------------------------------------

    def resolve(self, rev: str) -> str | None:
        """The commit ``rev`` names, or None when it names none (or git cannot tell)."""
        done = self.run("rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}")
        return done.stdout.strip() if done.returncode == 0 else None

    def branch_exists(self, branch: str) -> bool:
        return self.run("show-ref", "--verify", "-q", f"refs/heads/{branch}").returncode == 0

    def refs(self, prefix: str) -> dict[str, str]:
        """Ref name → commit, for the refs under ``prefix`` (``refs/locus/runs/``)."""
        out = self.output("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        pairs = (line.split(" ", 1) for line in out.splitlines())
        return {name: sha for name, sha in pairs}

    def update_refs(self, commands: Sequence[str]) -> None:
        """``git update-ref --stdin``: ``create|update|delete <ref> …`` lines in one
        transaction, all made or none."""
        self.output("update-ref", "--stdin", stdin="".join(f"{c}\n" for c in commands))

    def is_referenced(self, commit: str) -> bool:
        """Whether some ref (a branch, a tag, a Locus ref) has ``commit`` in its history."""
        return bool(self.output("for-each-ref", "--count=1", "--contains", commit).strip())

    def current_branch(self) -> str | None:
        """The checked-out branch, None on a detached HEAD (read from HEAD: no process)."""
        head = self._repo.head
        return None if head.is_detached else head.reference.name

    def upstream(self) -> str | None:
        """The commit of the current branch's upstream; None on a detached HEAD, without an
        upstream, or when it is gone."""
        return self.resolve("@{upstream}")

    def upstream_remote(self) -> str | None:
        """The remote of the current branch's upstream, if it has one."""
        found = self.output("for-each-ref", "--format=%(HEAD)%(upstream:remotename)", "refs/heads/")
        current = [line[1:] for line in found.splitlines() if line.startswith("*")]
        return current[0] if current and current[0] else None

    def is_ancestor(self, ancestor: str, commit: str) -> bool:
        """Whether ``ancestor`` is ``commit`` or one of its ancestors."""
        done = self.run("merge-base", "--is-ancestor", ancestor, commit)
        if done.returncode not in (0, 1):
            raise GitFailed(["git", "merge-base", "--is-ancestor", ancestor, commit], done)
        return done.returncode == 0

    # -- configuration and remotes ---------------------------------------------------------

    def config(self, key: str) -> str | None:
        """A config value as git reads it (every file, includes, ``GIT_CONFIG_*``); None when
        unset."""
        value = self.run("config", "--get", key, timeout=30).stdout.strip()
        return value or None

    def remotes(self) -> dict[str, str]:
        """Remote name → fetch URL (``url.*.insteadOf`` applied, as git uses it)."""
        found: dict[str, str] = {}
        for line in self.output("remote", "-v", timeout=30).splitlines():
            name, _, rest = line.partition("\t")
            url, _, kind = rest.rpartition(" ")
            if kind == "(fetch)" and url:
                found.setdefault(name, url)  # the first URL, as git remote get-url
        return found

    def fetch(self, remote: str, timeout: float) -> Finished:
        """Fetch ``remote``'s branches: no FETCH_HEAD, no gc, no submodules."""
        return self.run(
            "fetch", "--quiet", "--no-write-fetch-head", "--no-auto-gc",
            "--no-recurse-submodules", "--end-of-options", remote,
            timeout=timeout, network=True,
        )  # fmt: skip

    # -- worktrees ---------------------------------------------------------------------------

    def worktrees(self) -> list[ListedWorktree]:
        """``git worktree list``: the main checkout first, then the linked worktrees."""
        out = self.output("worktree", "list", "--porcelain", "-z")
        found: list[ListedWorktree] = []
        for block in out.split("\0\0"):
            fields = dict(line.partition(" ")[::2] for line in block.split("\0") if line)
            if "worktree" in fields:
                found.append(
                    ListedWorktree(
                        path=Path(fields["worktree"]),
                        head=fields.get("HEAD", ""),
                        branch=fields.get("branch", "").removeprefix("refs/heads/"),
                        locked="locked" in fields,
                        main=not found,
                    )
                )
        return found

    def add_worktree(self, path: Path, commit: str) -> None:
        """A new worktree at ``path`` on a detached HEAD at ``commit``: no branch is made."""
        self.output("worktree", "add", "-q", "--detach", str(path), commit)

    def move_worktree(self, path: Path, new_path: Path) -> None:
        """``git worktree move`` (git refuses a worktree with submodules)."""
        self.output("worktree", "move", str(path), str(new_path))

    def remove_worktree(self, path: Path, *, force: bool = False) -> Finished:
        """``git worktree remove``; git refuses a dirty worktree unless ``force``."""
        return self.run("worktree", "remove", str(path), *(["--force"] if force else []))

    def prune_worktrees(self) -> list[str]:
        """Forget worktrees whose directory is gone; git's line for each."""
        return self.run("worktree", "prune", "--verbose").stderr.splitlines()

    # -- the working tree ------------------------------------------------------------------

    def has_changes(
        self, *, untracked: bool = True, all_submodules: bool = False, read_only: bool = False
    ) -> bool:
        """Uncommitted changes, staged or not (and untracked files that are not ignored, unless
        ``untracked`` is False). ``all_submodules``: changes inside submodules count whatever
        the config says; ``read_only``: git does not refresh the index (someone else's)."""
        args = ["--no-optional-locks"] if read_only else []
        args += ["status", "--porcelain", "-z"]
        args.append(f"--untracked-files={'normal' if untracked else 'no'}")
        args += ["--ignore-submodules=none"] if all_submodules else []
        return bool(self.output(*args))

    def checkout_detached(self, commit: str) -> None:
        """Detach this worktree's HEAD at ``commit``, tracked files overwritten."""
        self.output("checkout", "-q", "--force", "--detach", commit)

    def switch_to_branch(self, branch: str, *, create: bool) -> None:
        """Put HEAD on ``branch`` (made at HEAD when ``create``); files and index stay as they
        are, since HEAD's commit does not change."""
        self.output("checkout", "-q", *(["-b"] if create else []), branch)

    def update_submodules(self, timeout: float) -> Finished:
        """``git submodule update --init --recursive``. protocol.file.allow=always: since git
        2.38.1 local-path submodule URLs are refused by default (CVE-2022-39253: cloning an
        *untrusted* repository whose submodule is a crafted local repository). These URLs come
        from the user's own repository at a commit the user already has, and the user has
        already cloned these submodules to build their checkout; this is the clone they would
        run by hand. It is scoped to this one command; fetches never get it."""
        return self.run(
            "-c", "protocol.file.allow=always", "submodule", "--quiet", "update", "--init",
            "--recursive", timeout=timeout, network=True,
        )  # fmt: skip

    def ls_files(self, pathspecs: Sequence[str]) -> list[str]:
        """Tracked and untracked files that are not ignored, matching ``pathspecs``: the raw
        names (``-z``: never C-quoted), so any name round-trips."""
        out = self.output(
            "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--deduplicate",
            "--", *pathspecs, timeout=60,
        )  # fmt: skip
        return [path for path in out.split("\0") if path]

    def untracked_matching(self, patterns: str) -> list[str]:
        """Untracked files that the gitignore-syntax ``patterns`` match, by git's own matching
        (``ls-files --others --ignored --exclude-from``; the repository's .gitignore plays no
        part here): the raw names."""
        with tempfile.NamedTemporaryFile("wb", prefix="locus-patterns-") as file:
            file.write(patterns.encode("utf-8", "surrogateescape"))
            file.flush()
            out = self.output(
                "ls-files", "-z", "--others", "--ignored", f"--exclude-from={file.name}",
                timeout=120,
            )  # fmt: skip
        return [path for path in out.split("\0") if path]

    def ignored(self, paths: Sequence[str]) -> list[str]:
        """Those of ``paths`` that git ignores here (a tracked file never is)."""
        if not paths:
            return []
        done = self.run("check-ignore", "-z", "--stdin", stdin="\0".join(paths), timeout=60)
        if done.returncode not in (0, 1):  # 1: none of them
            raise GitFailed(["git", "check-ignore"], done)
        return [path for path in done.stdout.split("\0") if path]

    def grep(self, pattern: str, pathspecs: Sequence[str], timeout: float) -> Finished:
        """``git grep -z -n`` for an extended regular expression in tracked and untracked files
        that are not ignored (binary files skipped); exit code 1 means no match."""
        return self.run(
            "grep", "-z", "--line-number", "-I", "--untracked", "--exclude-standard",
            "--extended-regexp", "-e", pattern, "--", *pathspecs, timeout=timeout,
        )  # fmt: skip

    # -- history -------------------------------------------------------------------------------

    def commits_since(self, base: str, branch: str) -> list[Commit]:
        """The commits on ``branch`` that ``base`` does not have, newest first, with their
        trailers — how a commit a crashed run already made is found again."""
        out = self.output(
            "log", "--format=%H%x00%B%x00%(trailers:only,unfold)%x00", "--end-of-options",
            f"{base}..{branch}",
        )  # fmt: skip
        fields = out.split("\0")
        commits = []
        for sha, body, trailers in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
            pairs = (line.partition(":") for line in trailers.splitlines() if ":" in line)
            commits.append(
                Commit(sha.strip(), body, tuple((k.strip(), v.strip()) for k, _, v in pairs))
            )
        return commits

    def contains_patch(self, commit: str, patch: str) -> bool:
        """Whether ``commit``'s tree already has what ``patch`` changes (the patch applies in
        reverse to it), checked in a throwaway index: two git commands."""
        with self._throwaway_index() as env:
            self._checked(self.run("read-tree", commit, env=env, timeout=120), "read-tree")
            done = self.run(
                "apply", "--cached", "--check", "--reverse", "--binary", "-",
                stdin=patch, env=env, timeout=120,
            )  # fmt: skip
        return done.returncode == 0

    def paths_at(self, commit: str) -> list[str]:
        """Every file path in ``commit``'s tree (what the commit holds, not the worktree)."""
        listed = self.output(
            "ls-tree", "-r", "-z", "--name-only", "--full-tree", commit, timeout=120
        )
        return [path for path in listed.split("\0") if path]

    def text_at(self, commit: str, path: str) -> str | None:
        """A file's text as ``commit`` holds it (None: not there); no filter or textconv runs."""
        done = self.run("cat-file", "blob", f"{commit}:{path}", timeout=120)
        return done.stdout if done.returncode == 0 else None

    def diff_against(self, base: str) -> str:
        """Everything changed in this worktree, new files included (ignored ones not), against
        ``base`` — computed with a throwaway index, so the worktree's own index stays as it
        is. Files with more than one hard link are left out (see :meth:`diff_and_left_out`)."""
        return self.diff_and_left_out(base)[0]

    def diff_and_left_out(self, base: str) -> tuple[str, list[str]]:
        """:meth:`diff_against`, and the changed files it leaves out: those with more than one
        hard link, whose content may be a file from outside the worktree (a hard link passes
        every path check; git reads what it points to). Symlinks stay in: git stores the link
        itself, never what it points to. Four git commands, five with a file left out."""
        with self._throwaway_index() as env:
            self._checked(self.run("read-tree", base, env=env, timeout=120), "read-tree")
            self._checked(self.run("add", "--all", env=env, timeout=120), "add --all")
            changed = self.run(
                "diff", "--cached", "--name-only", "-z", "--no-renames", base, env=env, timeout=120
            )  # fmt: skip
            left_out = [p for p in self._checked(changed, "diff").split("\0") if self._linked(p)]
            if left_out:  # back to what base has (a new file: out of the index)
                literal = {**env, "GIT_LITERAL_PATHSPECS": "1"}
                reset = self.run(
                    "reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul", base,
                    stdin="\0".join(left_out), env=literal, timeout=120,
                )  # fmt: skip
                self._checked(reset, "reset")
            diff = self.run(
                "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
                "--src-prefix=a/", "--dst-prefix=b/", base, env=env, timeout=120,
            )  # fmt: skip
            return self._checked(diff, "diff"), left_out

    def _linked(self, path: str) -> bool:
        """Whether the worktree's ``path`` is a regular file with more than one hard link."""
        try:
            info = os.lstat(self.path / path)
        except OSError:
            return False  # deleted, or under a directory that is now a file: nothing to read
        return stat.S_ISREG(info.st_mode) and info.st_nlink > 1

    def snapshot(self, message: str) -> str:
        """A commit of everything in this worktree (new files included, ignored ones not) on
        top of HEAD, made in a throwaway index and named by no ref: the worktree, its index
        and HEAD stay as they are. Its author is Locus, not the user: it is a safekeeping
        copy, never a commit the user accepted. Four git commands."""
        with self._throwaway_index() as env:
            self._checked(self.run("read-tree", "HEAD", env=env, timeout=120), "read-tree")
            self._checked(self.run("add", "--all", env=env, timeout=120), "add --all")
            tree = self._checked(self.run("write-tree", env=env, timeout=120), "write-tree")
        made = self.run(
            "commit-tree", tree.strip(), "-p", "HEAD", stdin=message, env=SNAPSHOT_AUTHOR,
            timeout=60,
        )  # fmt: skip
        return self._checked(made, "commit-tree").strip()

    @contextmanager
    def _throwaway_index(self) -> Iterator[dict[str, str]]:
        with tempfile.TemporaryDirectory(prefix="locus-index-") as tmp:
            yield {"GIT_INDEX_FILE": str(Path(tmp) / "index")}

    @staticmethod
    def _checked(done: Finished, what: str) -> str:
        if done.returncode != 0:
            raise GitFailed(["git", what], done)
        return done.stdout


@contextmanager
def _input_file(data: str | None) -> Iterator[Any]:
    """``data`` in an unnamed temporary file, as a child's stdin (None: stdin closed)."""
    if data is None:
        yield None
        return
    with tempfile.TemporaryFile() as file:
        file.write(data.encode("utf-8", "surrogateescape"))
        file.seek(0)
        yield file
