"""A repository's history as the file hints read it: per non-merge commit its time, message and
the paths it touched, renames followed to the newest name.

One ``git log --name-status -z`` through :class:`~locusd.git.repo.Repository` (GitPython's
command wrapper, Locus's environment and timeouts): a few thousand commits read in well under
a second. Messages are kept for LOCAL ranking only (:mod:`locusd.graph.rank`); nothing here is
uploaded and nothing here does network IO.
"""

from __future__ import annotations

from locusd.git.repo import Repository

# The records and renames are pure (the cloud ranks with them too): re-exported from here.
from locusd.graph.records import Commit as Commit
from locusd.graph.records import follow_renames as follow_renames

#: A commit touching more files than this (a reformat, a vendoring, a licence header sweep)
#: says nothing about which files change together: its paths are dropped (``touched`` keeps the
#: count), so it adds neither text nor co-change to any file.
MAX_PATHS = 100
#: Commits read at most (the newest), for the hints and the upload: a giant repository's
#: history must not stall a run start. 5000 commits read and rank in well under a second
#: (docs/benchmarks.md, "File hints").
MAX_COMMITS = 5000
_TIMEOUT_S = 300.0
# Commit header fields, between a record separator and the -z name-status list.
_RECORD, _FIELD = "\x1e", "\x1f"
_FORMAT = f"--format={_RECORD}%H{_FIELD}%ct{_FIELD}%B{_FIELD}"


def read_history(
    repo: Repository, until: str = "HEAD", since: str | None = None, limit: int | None = None
) -> list[Commit]:
    """Non-merge commits reachable from ``until`` (the index state at a task's parent),
    oldest first; only those after ``since`` when given (an incremental read), at most the
    ``limit`` newest. Paths are as each commit left them: :func:`follow_renames` maps them on."""
    args = ["log", "--no-merges", "--topo-order", "-M", "--name-status", "-z", _FORMAT]
    if limit is not None:
        args.append(f"--max-count={limit}")
    args += ["--end-of-options", f"{since}..{until}" if since else until]
    records = [_parsed(chunk) for chunk in repo.output(*args, timeout=_TIMEOUT_S).split(_RECORD)]
    return [record for record in reversed(records) if record is not None]


def _parsed(chunk: str) -> Commit | None:
    if not chunk:
        return None
    sha, when, message, status = chunk.split(_FIELD, 3)
    paths, renames, touched = _name_status(status)
    return Commit(sha, int(when), message.strip(), paths, renames, touched)


def _name_status(status: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], int]:
    """A commit's ``--name-status -z`` list: the paths it left files at (none past
    :data:`MAX_PATHS`), its renames, and how many paths it touched."""
    words = [word for word in status.lstrip("\0\n").split("\0") if word]
    paths: set[str] = set()
    renames: list[tuple[str, str]] = []
    at = 0
    while at < len(words):
        kind = words[at]
        if kind[:1] in ("R", "C"):  # rename/copy: old and new path follow
            old, new = words[at + 1], words[at + 2]
            if kind[0] == "R":
                renames.append((old, new))
            paths.add(new)
            at += 3
        else:
            if kind[:1] != "D":  # a deleted path is no file to look at
                paths.add(words[at + 1])
            at += 2
    touched = len(paths) + sum(1 for word in words if word[:1] == "D")
    return (tuple(sorted(paths)) if touched <= MAX_PATHS else ()), tuple(renames), touched


#: Finished tasks read at most (the newest accepted commits).
MAX_TASKS = 500
_TASK_FORMAT = f"--format={_RECORD}%(trailers:key=Locus-Task,valueonly,separator=%x2C){_FIELD}"


def read_task_files(repo: Repository, limit: int = MAX_TASKS) -> dict[int, tuple[str, ...]]:
    """Per finished task, the files its accepted commit touched: every commit carrying a
    ``Locus-Task: N`` trailer (:func:`locusd.review.recap.with_trailer`) reachable from
    ``HEAD`` or a ``locus/`` branch (where an accepted change is committed), newest first, at
    most ``limit``. A task committed twice (a send-back) counts every commit's files; a commit
    past :data:`MAX_PATHS` paths keeps none. The trailer is the repository's text: only a
    whole positive number is taken as a task id."""
    if repo.resolve("HEAD") is None:
        return {}
    out = repo.output(
        "log", "--no-merges", "--name-status", "-z", _TASK_FORMAT, f"--max-count={limit}",
        "--extended-regexp", "--grep=^Locus-Task: *[0-9]+ *$", "--branches=locus/", "HEAD",
        timeout=_TIMEOUT_S,
    )  # fmt: skip
    tasks: dict[int, set[str]] = {}
    for chunk in out.split(_RECORD):
        if not chunk:
            continue
        trailer, status = chunk.split(_FIELD, 1)
        paths = _name_status(status)[0]
        for value in trailer.strip().split(","):
            value = value.strip()
            if value.isascii() and value.isdigit() and 0 < int(value) < 2**31:
                tasks.setdefault(int(value), set()).update(paths)
    return {task: tuple(sorted(paths)) for task, paths in tasks.items()}
