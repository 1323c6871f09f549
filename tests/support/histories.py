"""Real git repositories with a history written to order (files, messages, dates), for the
graph's history reader, its ranking and the ``bench.graph`` harness."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

START = 1_700_000_000  # commit times count from here, a day per commit: reproducible


def git(repo: Path, *args: str, when: int = START) -> str:
    """``git args`` in ``repo`` with a fixed identity and date; stdout."""
    stamp = f"@{when} +0000"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        **{f"GIT_{who}_NAME": "Test" for who in ("AUTHOR", "COMMITTER")},
        **{f"GIT_{who}_EMAIL": "test@localhost" for who in ("AUTHOR", "COMMITTER")},
        **{f"GIT_{who}_DATE": stamp for who in ("AUTHOR", "COMMITTER")},
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


def commit(repo: Path, message: str, files: Mapping[str, str | None], when: int) -> str:
    """Writes ``files`` (None deletes one) and commits them with ``message`` at ``when``;
    returns the commit's sha."""
    for name, text in files.items():
        path = repo / name
        if text is None:
            git(repo, "rm", "-q", "--", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", "--", name)
    git(repo, "commit", "-q", "--allow-empty", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD").strip()


#: Topics of the constructed project: the words its tasks use (none of them in a path name)
#: and the files such a task touches.
TOPICS: dict[str, tuple[list[str], list[str]]] = {
    "escapes": (
        ["unicode escapes in quoted literals", "surrogate pairs in escaped strings",
         "backslash handling inside quoted literals"],
        ["src/scan/tokens.py", "tests/test_tokens.py"],
    ),
    "colour": (
        ["terminal colour output for warnings", "ANSI colour when stdout is piped",
         "colour themes for warnings"],
        ["src/out/console.py", "src/out/styles.py"],
    ),
    "retries": (
        ["retry flaky downloads with backoff", "backoff jitter for downloads",
         "give up downloads after retry budget"],
        ["src/net/fetcher.py", "src/net/policy.py", "tests/test_fetcher.py"],
    ),
    "plugins": (
        ["discover third party extensions via entry points", "entry points for extensions",
         "load extensions lazily"],
        ["src/core/loader.py", "src/core/registry.py"],
    ),
}  # fmt: skip


GUIDES = [f"guide/chapter-{letter}.md" for letter in "abcdefghijkl"]


def constructed_project(path: Path, rounds: int = 9) -> Path:
    """A project of a few dozen commits: each round makes one commit per topic (its words,
    its files, and now and then the changelog), so a task's text predicts its files through
    earlier commits, never through path names; and two sweeps over a dozen guide pages, the
    files changed most often."""
    repo = new_repo(path)
    files = {name: "" for _, names in TOPICS.values() for name in names}
    files |= {name: "" for name in GUIDES}
    commit(repo, "Initial layout", {**files, "CHANGELOG.md": "", "README.md": ""}, START)
    when = START
    for round_number in range(rounds):
        for topic, (phrases, names) in TOPICS.items():
            when += 86400
            phrase = phrases[round_number % len(phrases)]
            body = f"The {topic} work, step {round_number}: {phrase}."
            changed = {name: f"{topic} {round_number}\n" for name in names}
            if round_number % 2 == 0:
                changed["CHANGELOG.md"] = f"{topic} {round_number}\n"
            commit(repo, f"{phrase.capitalize()}\n\n{body}", changed, when)
        for sweep in ("Proofread", "Reword"):
            when += 86400
            pages = {name: f"{sweep} {round_number}\n" for name in GUIDES}
            commit(repo, f"{sweep} the user guide", pages, when)
    return repo
