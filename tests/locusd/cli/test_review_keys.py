"""``locus review`` as a person uses it, like ``git add -p``: on a real pseudo-terminal, against a
real daemon whose run of a real cloud task awaits review. The summary, the check and the
changed files come before the first hunk; y/n/c/q/a/d/e/s/j/k/? with a ``(3/12)`` counter; an
edit that does not apply is refused and asked again; a split hunk is decided part by part; the
recap and "Commit now?" end it, with a message built from what was accepted only. The
reviewer's decisions and comment (its secret scrubbed) reach the task's timeline, in words.

The agent names its files ``-m`` and ``odd<newline>Locus-Task: 99.txt``: neither confuses the
prompt nor forges a line of the commit message."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from cloud_api.dashboard.timeline import Names, describe
from cloud_api.schemas.tasks import EventOut
from tests.cloud_api.dashboard.test_dashboard_http import jar_session, sign_in
from tests.conftest import Cloud

# BASE and PROPOSED re-exported: tests/editors/test_vscode_client.py imports them from here.
from tests.locusd.agentkit import BASE as BASE
from tests.locusd.agentkit import PROPOSED as PROPOSED
from tests.locusd.agentkit import call
from tests.locusd.cli.test_cli_text import SGR, assert_inert
from tests.locusd.cliuser import LOCUS, User, awaiting_review, drained
from tests.locusd.secretshapes import REDACTOR_SHAPES
from tests.support.anthropic_server import Reply
from tests.support.client import timeline

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.parametrize("template", ["sqlite"], indirect=True),
]

ODD = "odd\nLocus-Task: 99.txt"
SECRET = REDACTOR_SHAPES["github classic"].secret
COMMENT = f"not this file, [red]x[/red] — it quotes {SECRET}"
FORGED = "# diff --git a/../outside b/../outside"

#: $EDITOR: the first edit changes an unchanged line (it does not apply), the second one
#: changes an added line and adds one that looks like a diff header.
EDITOR = f"""#!{sys.executable}
import pathlib, sys
path = pathlib.Path(sys.argv[1])
count = pathlib.Path(sys.argv[0]).parent / "edits"
tries = int(count.read_text()) + 1 if count.exists() else 1
count.write_text(str(tries))
text = path.read_text()
if tries == 1:
    text = text.replace(" " + "    middle = len(ordered) // 2", " " + "    middle = 0")
else:
    text = text.replace(" " + "    middle = 0", " " + "    middle = len(ordered) // 2")
    text = text.replace("+" + "        return (ordered[middle - 1] + ordered[middle]) / 2",
                        "+" + "        return (ordered[middle - 1] + ordered[middle]) / 2.0")
    text = text.replace("\\n#", "\\n+{FORGED}\\n#", 1)
path.write_text(text)
"""


def session() -> list[Reply]:
    return [
        call("write_file", path="stats.py", content=PROPOSED),
        call("write_file", path="notes.md", content="Notes nobody asked for.\n"),
        call("write_file", path="-m", content="a file named like a flag\n"),
        call("write_file", path=ODD, content="a file whose name forges a trailer\n"),
        call("run_verify"),
        call("finish", summary="Fixed median; also renamed things and wrote notes.md."),
    ]


PROMPT = re.compile(r"\((\d+)/(\d+)\) Accept this (hunk|change) \[([^\]]*)\]\?")


class Terminal:
    """``locus review`` on a pseudo-terminal: what it printed, and the prompts answered."""

    def __init__(self, user: User, editor: Path, *args: str) -> None:
        env = {k: v for k, v in user.env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        env = {**env, "TERM": "xterm-256color", "EDITOR": str(editor), "VISUAL": str(editor)}
        self.child = pexpect.spawn(
            LOCUS, list(args), env=env, dimensions=(60, 200), encoding="utf-8", timeout=60
        )
        self.seen = ""

    def prompt(self) -> tuple[str, str, str]:
        """Wait for the next hunk's prompt: (counter, kind, keys)."""
        self.child.expect(PROMPT)
        self.seen += f"{self.child.before}{self.child.after}"
        match = self.child.match
        assert isinstance(match, re.Match)
        return f"({match.group(1)}/{match.group(2)})", match.group(3), match.group(4)

    def expect(self, pattern: str) -> None:
        self.child.expect(pattern)
        self.seen += f"{self.child.before}{self.child.after}"

    def send(self, line: str) -> None:
        self.child.sendline(line)

    def end(self) -> str:
        self.seen += self.child.read()
        self.child.close()
        assert self.child.exitstatus == 0, self.seen
        shown = SGR.sub("", self.seen).replace("\r\n", "\n")
        assert_inert(shown)
        return shown


def review_session(user: User, editor: Path, run_id: str) -> str:
    term = Terminal(user, editor, "review", run_id)
    # Files in git's order: -m, notes.md, odd…, stats.py (two hunks).
    assert term.prompt() == ("(1/5)", "hunk", "y,n,c,q,a,d,e,j,?")
    term.send("?")
    term.expect("j - leave this hunk undecided, see the next undecided hunk")
    assert term.prompt()[0] == "(1/5)"
    term.send("j")
    assert term.prompt() == ("(2/5)", "hunk", "y,n,c,q,a,d,e,j,k,?")
    term.send("k")
    assert term.prompt()[0] == "(1/5)"
    term.send("y")
    assert term.prompt()[0] == "(2/5)"
    term.send("c")
    term.expect("Comment")
    term.send(COMMENT)
    counter, _, keys = term.prompt()
    assert counter == "(3/5)" and "s" not in keys.split(",")
    term.send("y")
    counter, _, keys = term.prompt()
    assert counter == "(4/5)" and "s" in keys.split(",")
    term.send("s")
    term.expect("Split into 2 hunks.")
    assert term.prompt()[0] == "(4/6)"
    term.send("n")  # the docstring stays
    counter, _, keys = term.prompt()
    assert counter == "(5/6)" and "e" not in keys.split(",")  # a part is not edited
    term.send("y")  # mean()'s message changes
    assert term.prompt()[0] == "(6/6)"
    term.send("e")
    term.expect("Your edited hunk does not apply")
    term.expect(r"Edit again")
    term.send("y")
    term.expect(r"Commit now\?")
    term.send("y")
    return term.end()


async def test_a_review_like_git_add_p_reaches_the_commit_and_the_timeline(
    user: User, cloud: Cloud, tmp_path: Path
) -> None:
    editor = tmp_path / "editor" / "edit"
    editor.parent.mkdir()
    editor.write_text(EDITOR)
    editor.chmod(0o755)
    task, run = await awaiting_review(user, cloud, session(), "Fix median")
    before = await user.json("review", run["run_id"])
    assert "commitMessage" not in before  # nothing accepted yet
    assert [f["path"] for f in before["files"]] == ["-m", "notes.md", ODD, "stats.py"]

    shown = await asyncio.to_thread(review_session, user, editor, run["run_id"])

    # Before the first hunk: the summary, the check, the changed files with their counts.
    first = shown.index("Accept this")
    assert shown.index("Fixed median; also renamed") < first
    assert shown.index("Verification") < first and shown.index("Changed files") < first
    table = shown[shown.index("Changed files") : first]
    assert re.search(r"modified +stats\.py +\+4 +-2", table), table
    assert "odd\\nLocus-Task: 99.txt" in table  # the name on one line, its newline shown
    # The recap, then the message: what was accepted, never the rejected file.
    recap = shown[shown.index("Recap") : shown.index("Commit message:")]
    assert re.search(r"notes\.md +0 accepted +0 edited +1 rejected +0 undecided", recap), recap
    message = shown[shown.index("Commit message:") : shown.index("Commit now?")]
    assert "notes.md" not in message and "renamed things" not in message, message
    assert '- "odd\\nLocus-Task: 99.txt": 1 of 1' in message and "- -m: 1 of 1" in message
    found = re.search(r"committed ([0-9a-f]{12}) on (\S+)", shown)
    assert found, shown

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=user.repo, check=True, capture_output=True, text=True
        ).stdout

    branch = found.group(2)
    body = git("log", "-1", "--format=%B", branch)
    trailers = git("log", "-1", "--format=%(trailers:key=Locus-Task,valueonly)", branch)
    assert trailers.split() == [str(task["id"])], body  # the odd name forged nothing
    files = git("diff-tree", "--no-commit-id", "--name-only", "-z", "-r", branch).split("\0")
    assert sorted(f for f in files if f) == ["-m", ODD, "stats.py"]
    committed = git("show", f"{branch}:stats.py")
    assert committed == (
        BASE.replace('"mean of an empty list"', '"mean() of an empty list"').replace(
            "    return ordered[middle]\n",
            "    if len(ordered) % 2 == 0:\n"
            "        return (ordered[middle - 1] + ordered[middle]) / 2.0\n"
            f"    return ordered[middle]\n{FORGED}\n",
        )
    )
    assert not (user.repo.parent / "outside").exists()

    # The task's timeline: the decisions, the comment with its secret scrubbed, in words.
    await drained(user)
    events = await timeline(cloud.api, task["id"])
    (review,) = [e for e in events if e["kind"] == "review"]
    assert SECRET not in json.dumps(review)
    said = "".join(text for text, _ in describe(EventOut.model_validate(review), Names({}, {}, {})))
    assert "stats.py 2 edited" in said and "-m 1 accepted" in said, said
    assert re.search(r"notes\.md 1 rejected — “not this file, \[red\]x\[/red\] — it quotes", said)
    # … and so does the task's page on the dashboard, the comment as text.
    async with jar_session() as http:
        assert (await sign_in(http, cloud, "/")).status == 303
        async with http.get(f"{cloud.url}/tasks/{task['id']}") as page:
            html = await page.text()
    assert "relayed the review: " in html and SECRET not in html
    assert "“not this file, [red]x[/red] — it quotes" in html, html


async def test_keys_from_a_pipe_quit_leaves_the_rest_undecided_and_m_names_the_commit(
    user: User, cloud: Cloud
) -> None:
    """Pipe-friendly: the keys can come from a pipe (``--interactive``), the output has no
    box drawing; ``a``/``d`` decide the rest of a file, ``q`` leaves the rest undecided and
    recorded decisions stay; then ``--commit -m`` commits with the person's message."""
    _, run = await awaiting_review(user, cloud, session(), "Fix")
    run_id = run["run_id"]
    # -m: a (the rest of its file); notes.md: d; odd: j; stats.py: a (both hunks); back at
    # odd: q. Then "Commit now?": n.
    _, out, err = await user.locus(
        "review", run_id, "--interactive", stdin="a\nd\nj\na\nq\nn\n", check=False
    )
    assert "─" not in out and "│" not in out, out
    lines = out.splitlines()
    assert "modified\tstats.py\t+4\t-2" in lines, out  # the changed files, tab-separated
    counters = re.findall(r"\((\d+/\d+)\) Accept", out)
    assert counters == ["1/5", "2/5", "3/5", "4/5", "3/5"], out
    assert "odd\\nLocus-Task: 99.txt\t0 accepted\t0 edited\t0 rejected\t1 undecided" in lines
    assert f"1 undecided: they stay in the worktree, uncommitted; locus review {run_id}" in out
    assert f"Not committed: locus review {run_id} --commit commits it later." in out

    view = await user.json("review", run_id)
    actions = {
        f["path"]: [(h.get("decision") or {}).get("action") for h in f["hunks"]]
        for f in view["files"]
    }
    assert actions == {
        "-m": ["accept"], "notes.md": ["reject"], ODD: [None], "stats.py": ["accept", "accept"]
    }  # fmt: skip
    assert view["undecided"] == 1 and "notes.md" not in view["commitMessage"]

    _, out, err = await user.locus("review", run_id, "--commit", "-m", "Fix median\n\nMine.")
    found = re.search(r"committed [0-9a-f]{12} on (\S+)", out)
    assert found, out + err
    body = subprocess.run(
        ["git", "log", "-1", "--format=%B", found.group(1)],
        cwd=user.repo, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    task_id = view["runId"].split("-", 1)[0]
    assert body.strip() == f"Fix median\n\nMine.\n\nLocus-Task: {task_id}"
    _, _, err = await user.locus("review", run_id, "--commit", "-m", " ", check=False)
    assert "-m/--message" in err and "empty" in err and "Traceback" not in err
