"""Graph index benchmark: ``.venv/bin/python -m bench.graphindex [--files N] [--commits N] [--json]``.

In one run, on a repository generated in a temporary directory (``--files`` files, 50,000 by
default, in nested modules of several languages, with 60 manifests, then ``--commits`` (3,000)
commits of 1 to 6 files each, every tenth a finished task's (a ``Locus-Task`` trailer), all
written by ``git fast-import`` so that generating it takes seconds):

* full upload — :func:`locusd.graph.snapshot.snapshot` with no saved state: the index, the
  newest 5,000 commits of history, the finished tasks' files, and the payload (bar: ≤ 60 s);
  the index alone against the baseline ``git ls-tree -r HEAD`` timed in the same run (the
  listing every index needs; printed as a ratio);
* incremental — the same after a commit that changes one manifest and 20 files, with the
  saved state: what the daemon does when ``HEAD`` moves (bar: ≤ 2 s);
* the payload's size (bar: ≤ 512 KB) and how many nodes were left out to stay under it.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.figures import (
    Figure,
    at_least_one,
    finish,
    machine,
    output_flags,
    parser_for,
    progress,
    result_of,
    table,
    work_directory,
)
from locusd.graph.index import index_checkout
from locusd.graph.payload import DEFAULT_LIMIT
from locusd.graph.snapshot import snapshot

FULL_TARGET_S = 60.0
INCREMENTAL_TARGET_S = 2.0
EXTENSIONS = (".py", ".ts", ".go", ".rs", ".md", ".json")


def git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True
    ).stdout.decode()


def _blob(path: str, text: str) -> bytes:
    data = text.encode()
    return b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)


def _commit(
    ref: str, message: str, files: dict[str, str], parent: bool, when: int = 1700000000
) -> bytes:
    msg = message.encode()
    head = b"commit %s\ncommitter Bench <b@l> %d +0000\ndata %d\n%s\n" % (
        ref.encode(), when, len(msg), msg,
    )  # fmt: skip
    if parent:
        head += b"from %s^0\n" % ref.encode()
    return head + b"".join(_blob(p, t) for p, t in sorted(files.items())) + b"\n"


def generate_repo(where: Path, files: int, commits: int = 0) -> dict[str, str]:
    """A repository of ``files`` files at HEAD (main) after ``commits`` small commits;
    returns its files."""
    where.mkdir(parents=True)
    git(where, "init", "-q", "-b", "main")
    tree: dict[str, str] = {
        "pyproject.toml": '[project]\nname = "x"\ndependencies = ["click", "rich"]\n'
        "[tool.pytest.ini_options]\n",
        "go.mod": "module example.com/x\nrequire github.com/pkg/errors v0.9.1\n",
        "Cargo.toml": '[dependencies]\nserde = "1"\n',
        "Makefile": "test:\n\tpytest\nlint:\n\truff check .\n",
    }
    for i in range(56):
        tree[f"packages/p{i:02}/package.json"] = (
            f'{{"dependencies": {{"left-pad": "1", "dep-{i}": "2"}}, "scripts": {{"test": "x"}}}}'
        )
    for i in range(files - len(tree)):
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        tree[f"packages/p{i % 56:02}/m{i % 17}/d{i % 23}/f{i:06}{ext}"] = f"# {i}\n"
    stream = [_commit("refs/heads/main", "first", tree, False)]
    paths = sorted(tree)
    pick = random.Random(7)
    for n in range(commits):
        changed = {p: f"# {n}\n" for p in pick.sample(paths[:2000], pick.randint(1, 6))}
        trailer = f"\n\nLocus-Task: {n}" if n % 10 == 0 else ""
        message = f"change {n} in {next(iter(changed))}{trailer}"
        # (no "from": within one stream, fast-import continues the branch)
        stream.append(_commit("refs/heads/main", message, changed, False, 1700000000 + n * 600))
    git(where, "fast-import", "--quiet", stdin=b"".join(stream))
    (where / ".locusignore").write_text("packages/p55/\n")
    return tree


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="locus-bench-graphindex-")).resolve()
    with work_directory(workdir, args.keep):
        info = machine(git=git(workdir, "--version").strip().removeprefix("git version "))
        repo, state = workdir / "repo", workdir / "state"
        progress(f"generating a {args.files}-file repository")
        generated, _ = _timed(lambda: generate_repo(repo, args.files, args.commits))
        progress("baseline: git ls-tree -r HEAD")
        listing, _ = _timed(lambda: git(repo, "ls-tree", "-r", "-l", "-z", "HEAD"))
        progress("the index alone, then the whole upload (index, history, payload)")
        full_index, full = _timed(lambda: index_checkout(repo, workdir / "index-only"))
        full_s, payload = _timed(lambda: snapshot(repo, state).payload)
        progress("a commit (one manifest, 20 files), then the incremental upload")
        change = {"packages/p01/package.json": '{"dependencies": {"left-pad": "2"}}'}
        change |= {f"packages/p02/new/f{i}.py": f"# new {i}\n" for i in range(20)}
        git(repo, "fast-import", "--quiet", stdin=_commit("refs/heads/main", "more", change, True))
        inc_s, shot = _timed(lambda: snapshot(repo, state))
        inc, inc_built = shot.indexed, shot.payload
    figures = [
        Figure("full", "full_s", "whole upload (index + history + payload), no state", full_s,
               "s", f"≤ {FULL_TARGET_S:.0f} s", full_s <= FULL_TARGET_S),
        Figure("full", "full_index_s", "the index alone", full_index, "s", "", None),
        Figure("full", "baseline_ls_tree_s", "baseline: git ls-tree -r HEAD", listing, "s",
               "", None),
        Figure("full", "full_vs_ls_tree", "full index / git ls-tree", full_index / listing,
               "x", "", None),
        Figure("incremental", "incremental_s", "whole upload after a commit", inc_s, "s",
               f"≤ {INCREMENTAL_TARGET_S:.0f} s", inc_s <= INCREMENTAL_TARGET_S),
        Figure("incremental", "incremental_vs_full", "incremental / full", inc_s / full_s, "x",
               "", None),
        Figure("incremental", "manifests_read", "manifests read again", inc.manifests_read, "",
               "", None),
        Figure("payload", "payload_kb", "payload size", len(inc_built.body) / 1000, "kB",
               f"≤ {DEFAULT_LIMIT / 1000:.1f} kB", len(inc_built.body) <= DEFAULT_LIMIT),
        Figure("payload", "dropped_nodes", "nodes left out for size", inc_built.dropped_nodes,
               "", "", None),
    ]  # fmt: skip
    return result_of(
        info,
        args,
        figures,
        started,
        repo={"files": args.files, "commits": args.commits,
              "generate_seconds": round(generated, 1),
              "indexed_paths": len(full.structure.paths), "full_payload_bytes": len(payload.body)},
    )  # fmt: skip


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    repo = result["repo"]
    title = (
        f"Locus graph index benchmark — {info['cpus']} CPUs, git {info['git']}, Python"
        f" {info['python']}\nrepository: {repo['files']} files ({repo['indexed_paths']} indexed,"
        f" the rest .locusignored), {repo.get('commits', 0)} commits, generated in"
        f" {repo['generate_seconds']:.1f} s"
    )
    return table(title, result)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("python -m bench.graphindex", __doc__ or "")
    parser.add_argument("--files", type=int, default=50_000, help="files in the generated repo")
    parser.add_argument("--commits", type=int, default=3000, help="commits of history after it")
    output_flags(parser)
    args = parser.parse_args(argv)
    at_least_one(parser, args, "files")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish(run(args), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
