"""What a user's allow pattern overrides (the default "ask" and the built-in ask patterns,
never a deny pattern nor an ask pattern the user set), and the permission modes: ``auto-edit``
runs file-managing commands inside a sandboxed worktree without asking, ``full-auto`` runs
everything no deny pattern stops — and no mode turns a deny into an allow or grants a
container engine's socket."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.policy import (
    DEFAULT_ASK,
    MODES,
    PUBLISHING,
    CommandPolicy,
    Mode,
    Verdict,
    decide,
    edits_files,
)

RANK: dict[Verdict, int] = {"allow": 0, "ask": 1, "deny": 2}


def verdict(
    policy: CommandPolicy,
    line: str,
    mode: Mode = "ask",
    *,
    sandboxed: bool = False,
    unattended: bool = False,
) -> Verdict:
    return decide(policy, line, unattended=unattended, mode=mode, sandboxed=sandboxed).verdict


# --- allow over the default ask -------------------------------------------------------------


def test_an_allow_pattern_overrides_the_default_ask() -> None:
    policy = CommandPolicy(allow=["pytest*", "make test*"], default="ask")
    ruling = decide(policy, "pytest -q tests", unattended=False)
    assert ruling.verdict == "allow" and "allow pattern 'pytest*'" in ruling.reason
    assert verdict(policy, "make test && pytest") == "allow"
    # A part no allow pattern names still gets the default, and the strictest part decides.
    assert verdict(policy, "make test && python3 x.py") == "ask"
    assert verdict(policy, "pytest", unattended=True) == "allow"


def test_an_allow_pattern_overrides_the_built_in_ask_patterns_only() -> None:
    builtin = CommandPolicy(allow=["git commit*", "git reset --soft*"])
    assert builtin.ask is None and builtin.tiers() == ([], list(DEFAULT_ASK))
    assert verdict(builtin, "git commit -m wip") == "allow"
    assert verdict(builtin, "git reset --soft HEAD~1") == "allow"
    assert verdict(builtin, "git reset --hard") == "ask"  # no allow pattern names it
    # The user's own ask patterns win over their allow patterns (deny > ask > allow).
    own = CommandPolicy(allow=["git commit*"], ask=["git commit*"])
    ruling = decide(own, "git commit -m wip", unattended=False)
    assert ruling.verdict == "ask" and "ask pattern 'git commit*'" in ruling.reason


def test_the_built_in_ask_patterns_see_through_runners_and_options() -> None:
    # Overridable, but still judged in every form a command may run as.
    assert verdict(CommandPolicy(), "git -C . commit -m x") == "ask"
    assert verdict(CommandPolicy(), "env -i git -c a=b commit") == "ask"


@pytest.mark.parametrize("pattern", [p.rstrip("*").strip() for p in PUBLISHING[:12]])
def test_an_allow_pattern_never_overrides_a_deny(pattern: str) -> None:
    policy = CommandPolicy(allow=["*"], default="ask")
    for line in (f"{pattern} x", f"npx {pattern} x", f"ls && {pattern}"):
        for mode in MODES:
            assert verdict(policy, line, mode, sandboxed=True) == "deny", (line, mode)


def test_allow_matches_the_part_as_written_only() -> None:
    # The user's ask of pip install is seen through python -m; an allow of "python3 -m*" is
    # not a way around it.
    policy = CommandPolicy(allow=["python3 -m*"], ask=["pip install*"], default="ask")
    assert verdict(policy, "python3 -m pip install evil") == "ask"
    assert verdict(policy, "python3 -m pytest") == "allow"
    # An allow pattern naming a stripped form does not allow the option-laden command line.
    dropped = CommandPolicy(allow=["git status*"], default="ask")
    assert verdict(dropped, "git -c alias.status=!sh status") == "ask"


PARTS = [
    "ls -la", "git status", "git commit -m x", "git reset --hard", "make build",
    "npm publish", "curl x", "mkdir -p src/a", "rm -rf build", "rm -rf /", "cp a ../b",
    "docker ps", "pytest -q", "python3 -m twine upload dist/x",
]  # fmt: skip
ALLOWS = ["ls*", "git *", "make*", "npm *", "pytest*", "docker*", "*", "rm *", "cp *"]
SEPARATORS = [" && ", "; ", " | ", "\n"]


@given(
    parts=st.lists(st.sampled_from(PARTS), min_size=1, max_size=4),
    allow=st.lists(st.sampled_from(ALLOWS), max_size=3),
    ask=st.one_of(st.none(), st.lists(st.sampled_from(["git *", "make*", "rm *"]), max_size=2)),
    default=st.sampled_from(["allow", "ask", "deny"]),
    sep=st.sampled_from(SEPARATORS),
    sandboxed=st.booleans(),
    unattended=st.booleans(),
)
def test_modes_and_allow_patterns_never_undo_a_deny(
    parts: list[str],
    allow: list[str],
    ask: list[str] | None,
    default: Verdict,
    sep: str,
    sandboxed: bool,
    unattended: bool,
) -> None:
    """Whatever the allow patterns and the mode: a line the deny patterns stop (with no allow
    pattern at all) stays denied, and a user's own ask pattern is asked (or denied) outside
    full-auto."""
    line = sep.join(parts)
    strict = CommandPolicy(allow=[], ask=ask, default=default)
    loose = CommandPolicy(allow=allow, ask=ask, default=default)
    denied = verdict(strict, line, unattended=unattended) == "deny" and default != "deny"
    for mode in MODES:
        got = verdict(loose, line, mode, sandboxed=sandboxed, unattended=unattended)
        if denied and any(verdict(strict, p) == "deny" for p in parts):
            assert got == "deny", (line, mode)
        own_ask = ask is not None and any(
            verdict(CommandPolicy(allow=["*"], ask=ask), p) == "ask" for p in parts
        )
        if own_ask and mode != "full-auto":
            assert RANK[got] >= RANK["ask"], (line, mode)


# --- auto-edit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["mkdir -p src/pkg", "touch src/pkg/__init__.py", "mv a.py b.py", "cp -r src out",
     "rm -rf build dist", "rmdir empty", "mkdir -p a && touch a/b"],
)  # fmt: skip
def test_auto_edit_runs_file_commands_inside_the_worktree(line: str) -> None:
    policy = CommandPolicy(default="ask")
    ruling = decide(policy, line, unattended=True, mode="auto-edit", sandboxed=True)
    assert ruling.verdict == "allow" and "mode auto-edit" in ruling.reason, line
    # The same in mode ask, and outside a sandbox (a symlink could lead a path out): asked.
    assert verdict(policy, line) == "ask"
    assert verdict(policy, line, "auto-edit", sandboxed=False) == "ask"


@pytest.mark.parametrize(
    "line",
    ["rm -rf /", "rm -rf ~/x", "rm -rf ../other", "cp a/../../x b", "mv x $HOME/y",
     "rm -rf *", "cp x {/etc,y}", "cp --target-directory=/tmp x", "rm `echo /`", "touch",
     "mkdir -p src && rm -rf /tmp/x", "chmod -R 777 .", "ln -s /etc x", "sed -i s/a/b/ f"],
)  # fmt: skip
def test_auto_edit_asks_about_anything_else(line: str) -> None:
    assert verdict(CommandPolicy(default="ask"), line, "auto-edit", sandboxed=True) != "allow"


def test_auto_edit_keeps_deny_and_the_users_ask() -> None:
    policy = CommandPolicy(ask=["rm *"], deny=["mv *"], default="ask")
    assert verdict(policy, "rm -rf build", "auto-edit", sandboxed=True) == "ask"
    assert verdict(policy, "mv a b", "auto-edit", sandboxed=True) == "deny"
    assert edits_files(["rm", "-rf", "build"]) and not edits_files(["rm", "-rf", "/"])


# --- full-auto -----------------------------------------------------------------------------


def test_full_auto_runs_what_would_be_asked_in_the_sandbox() -> None:
    policy = CommandPolicy(ask=["make*"], default="ask")
    for line in ("make deploy", "python3 x.py", "git commit -m x"):
        ruling = decide(policy, line, unattended=False, mode="full-auto", sandboxed=True)
        assert ruling.verdict == "allow" and "full-auto" in ruling.reason, line
        # No one to ask is no matter: full-auto asks no one.
        assert verdict(policy, line, "full-auto", sandboxed=True, unattended=True) == "allow"
        # Without the sandbox a command would run with the user's own rights: asked as in
        # mode ask (denied unattended), and the reason says why.
        bare = decide(policy, line, unattended=False, mode="full-auto", sandboxed=False)
        assert bare.verdict == "ask" and "only in the sandbox" in bare.reason, line
        assert verdict(policy, line, "full-auto", unattended=True) == "deny"
    assert verdict(policy, "git push origin main", "full-auto", sandboxed=True) == "deny"
    assert verdict(policy, "npx npm publish", "full-auto", sandboxed=True) == "deny"


def test_full_auto_never_grants_a_container_engine() -> None:
    ruling = decide(
        CommandPolicy(),
        "docker run --rm alpine",
        unattended=False,
        mode="full-auto",
        sandboxed=True,
    )
    assert ruling.verdict == "deny" and "[agent] containers = 'allow'" in ruling.reason
    assert verdict(CommandPolicy(), "ls && podman ps", "full-auto", sandboxed=True) == "deny"
    allowed = decide(CommandPolicy(), "docker ps", unattended=False, mode="full-auto",
                     containers="allow", sandboxed=True)  # fmt: skip
    assert allowed.verdict == "allow" and allowed.containers  # the user's own choice


def test_mode_ask_is_the_policy_as_it_was() -> None:
    policy = CommandPolicy(allow=["ls*"], ask=["make*"], deny=["rm *"], default="ask")
    for line, expected in (("ls", "allow"), ("make", "ask"), ("rm x", "deny"), ("id", "ask")):
        assert verdict(policy, line, "ask", sandboxed=True) == expected
        assert verdict(policy, line, "ask", unattended=True) == (
            "deny" if expected != "allow" else "allow"
        )
