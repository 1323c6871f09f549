"""The model on real git output: every kind of change git prints, decided, and the accepted
patch checked by ``git apply --cached`` — the index must then hold what :func:`apply` says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from locusd.git.diffs import diff_against
from locusd.review import (
    Accept,
    Decided,
    Decision,
    Edit,
    FileDiff,
    Reject,
    Review,
    accepted_patch,
    apply,
    decide,
    parse,
)

KEEP = "".join(f"line {i}\n" for i in range(1, 31))
RENAMED = "".join(f"text {i}\n" for i in range(1, 21))


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, input=stdin, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed base, then an agent's changes in the worktree: a file edited in two far
    apart places, one deleted, one renamed and edited, one made executable, a binary file
    changed and one added, a file without a trailing newline edited, a new text file, an
    empty new file and a name that git quotes."""
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Dev")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "dev@example.com")
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    files = {
        "keep.txt": KEEP,
        "gone.txt": "bye\n",
        "old_name.txt": RENAMED,
        "script.sh": "echo hi\n",
        "image.bin": "\0\1\2 binary\n",
        "nonl.txt": "first\nlast",
        "sp ace é.txt": "one\ntwo\n",
    }
    for name, text in files.items():
        (path / name).write_text(text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")

    (path / "keep.txt").write_text(KEEP.replace("line 2\n", "line two\n").replace("line 28\n", ""))
    (path / "gone.txt").unlink()
    (path / "old_name.txt").rename(path / "new_name.txt")
    (path / "new_name.txt").write_text(RENAMED.replace("text 10\n", "text ten\n"))
    (path / "script.sh").chmod(0o755)
    (path / "image.bin").write_bytes(b"\0\1\2 other binary\n")
    (path / "added.bin").write_bytes(bytes(range(256)))
    (path / "nonl.txt").write_text("first\nlast, edited")
    (path / "new.txt").write_text("brand\nnew\n")
    (path / "empty.txt").write_text("")
    (path / "sp ace é.txt").write_text("one\n2\n")
    return path


def index_matches(repo: Path, review: Review, chosen: Decided) -> None:
    """``git apply --cached`` takes the accepted patch, and the index then holds, for every
    text file, exactly what :func:`apply` computes on the base."""
    patch = accepted_patch(chosen)
    git(repo, "apply", "--cached", "--check", stdin=patch)
    git(repo, "apply", "--cached", stdin=patch)
    staged = set(git(repo, "ls-files", "-z").split("\0")) - {""}
    for file in review.files:
        if file.binary:
            continue
        base = "" if file.old_path is None else git(repo, "show", f"HEAD:{file.old_path}")
        text = apply(base, file, chosen)
        where = staged_path(file, chosen)
        if where is None:
            assert file.path not in staged and (file.old_path or file.path) not in staged
        else:
            assert where in staged
            assert git(repo, "show", f":{where}") == text


def staged_path(file: FileDiff, chosen: Decided) -> str | None:
    """Where the file should be in the index after the patch, or ``None`` if nowhere."""
    decisions = [chosen.for_hunk(h) for h in file.hunks]
    if file.status == "added":
        taken = any(isinstance(d, Accept | Edit) for d in decisions) or (
            not file.hunks and isinstance(chosen.for_file(file), Accept)
        )
        return file.path if taken else None
    if file.status == "deleted" and all(isinstance(d, Accept) for d in decisions):
        return None
    if file.status == "renamed" and isinstance(chosen.for_file(file), Accept):
        return file.path
    return file.old_path


def test_the_review_of_real_git_output(repo: Path) -> None:
    review = parse(diff_against(repo, "HEAD"))
    by_path = {f.path: f for f in review.files}
    assert {p: (f.status, f.old_path, len(f.hunks)) for p, f in by_path.items()} == {
        "keep.txt": ("modified", "keep.txt", 2),
        "gone.txt": ("deleted", "gone.txt", 1),
        "new_name.txt": ("renamed", "old_name.txt", 1),
        "script.sh": ("mode_changed", "script.sh", 0),
        "image.bin": ("binary", "image.bin", 0),
        "added.bin": ("added", None, 0),
        "nonl.txt": ("modified", "nonl.txt", 1),
        "new.txt": ("added", None, 1),
        "empty.txt": ("added", None, 0),
        "sp ace é.txt": ("modified", "sp ace é.txt", 1),
    }
    assert (by_path["script.sh"].old_mode, by_path["script.sh"].new_mode) == ("100644", "100755")
    assert by_path["added.bin"].binary and by_path["image.bin"].binary
    assert by_path["nonl.txt"].hunks[0].new_side == ["first\n", "last, edited"]


def test_accepting_everything_stages_the_worktree(repo: Path) -> None:
    review = parse(diff_against(repo, "HEAD"))
    chosen = decide(review, review.revision, {f.path: Accept() for f in review.files})
    index_matches(repo, review, chosen)
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status and all(line[1] == " " for line in status)  # index == worktree, all staged


def test_rejecting_everything_stages_nothing(repo: Path) -> None:
    review = parse(diff_against(repo, "HEAD"))
    chosen = decide(review, review.revision, {f.path: Reject("no") for f in review.files})
    assert accepted_patch(chosen) == ""
    assert git(repo, "diff", "--cached", "--stat") == ""


def test_a_partial_review_stages_exactly_what_was_accepted(repo: Path) -> None:
    review = parse(diff_against(repo, "HEAD"))
    by_path = {f.path: f for f in review.files}
    first, second = by_path["keep.txt"].hunks
    decisions: dict[str, Decision] = {
        first.id: Reject("keep line 2"),
        second.id: Accept(),
        "gone.txt": Reject(),
        "new_name.txt": Accept(),  # the rename and its edit…
        by_path["new_name.txt"].hunks[0].id: Reject(),  # …but not the edit
        "script.sh": Reject(),
        "image.bin": Accept(),
        "nonl.txt": Accept(),
        by_path["nonl.txt"].hunks[0].id: Edit(["first", "last, reviewed"]),
        by_path["new.txt"].hunks[0].id: Edit(["brand", "newer", "still"]),
        "empty.txt": Accept(),
        "sp ace é.txt": Accept(),
    }
    chosen = decide(review, review.revision, decisions)
    index_matches(repo, review, chosen)
    assert git(repo, "show", ":nonl.txt") == "first\nlast, reviewed"
    assert git(repo, "show", ":new.txt") == "brand\nnewer\nstill\n"
    assert git(repo, "show", ":new_name.txt") == RENAMED
    assert git(repo, "show", ":keep.txt") == KEEP.replace("line 28\n", "")
    assert git(repo, "show", ":image.bin") == "\0\1\2 other binary\n"
    assert "added.bin" not in git(repo, "ls-files")
    assert git(repo, "ls-files", "-s", "script.sh").startswith("100644")


def test_edits_turn_a_deletion_into_a_change_and_rejected_renames_stay(repo: Path) -> None:
    review = parse(diff_against(repo, "HEAD"))
    by_path = {f.path: f for f in review.files}
    decisions: dict[str, Decision] = {
        by_path["gone.txt"].hunks[0].id: Edit(["still here"]),
        by_path["new_name.txt"].hunks[0].id: Accept(),  # the edit, not the rename
        "script.sh": Accept(),
        by_path["new.txt"].hunks[0].id: Edit([]),  # created, but empty
    }
    chosen = decide(review, review.revision, decisions)
    index_matches(repo, review, chosen)
    assert git(repo, "show", ":gone.txt") == "still here\n"
    assert git(repo, "show", ":old_name.txt") == RENAMED.replace("text 10\n", "text ten\n")
    assert git(repo, "show", ":new.txt") == ""
    assert git(repo, "ls-files", "-s", "script.sh").startswith("100755")
    assert os.access(repo / "script.sh", os.X_OK)


def test_carriage_returns_survive_the_review(tmp_path: Path) -> None:
    """A CRLF file and a line with a lone ``\\r`` (an agent's, or Windows line ends) are
    reviewed as git sees them and, accepted, staged byte for byte: the diff is read as it is,
    not through text mode's newline translation."""
    path = tmp_path / "crlf"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "dos.txt").write_bytes(b"one\r\ntwo\r\n")
    git(path, "add", "-A")
    git(path, "-c", "user.name=Dev", "-c", "user.email=d@example.com", "commit", "-qm", "b")
    (path / "dos.txt").write_bytes(b"one\r\n2\r\n")
    (path / "lone.txt").write_bytes(b"back\rspace\n")
    review = parse(diff_against(path, "HEAD"))
    by_path = {f.path: f for f in review.files}
    assert by_path["dos.txt"].hunks[0].new_side == ["one\r\n", "2\r\n"]
    assert by_path["lone.txt"].hunks[0].new_side == ["back\rspace\n"]
    chosen = decide(review, review.revision, {f.path: Accept() for f in review.files})
    subprocess.run(
        ["git", "apply", "--cached"], cwd=path, input=accepted_patch(chosen).encode(), check=True
    )
    for name in ("dos.txt", "lone.txt"):
        staged = subprocess.run(
            ["git", "show", f":{name}"], cwd=path, capture_output=True, check=True
        ).stdout
        assert staged == (path / name).read_bytes()
