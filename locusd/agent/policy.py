"""Which commands the agent may run without asking: allow / ask / deny patterns. Pure logic.

A command line is split into its simple commands (at ``;``, ``&&``, ``||``, ``|``, ``&``,
newlines and parentheses, with shell quoting respected) and each is matched against shell-style glob patterns
(``git push*``). The strictest verdict over all parts wins, and among patterns deny beats ask
beats allow; a part no pattern names gets the ``default``. The built-in ask patterns
(:data:`DEFAULT_ASK`, used while the user's config sets no ``ask`` of its own) are the one
exception: a user's allow pattern overrides them, as it overrides a default of "ask". An
unattended run (no one to ask) treats "ask" as "deny" and says so, so the model can choose
another way.

The permission mode (:data:`Mode`, ``[agent] mode`` or ``--mode``) changes what "ask" means:
``ask`` asks; ``auto-edit`` also runs, without asking, file-managing commands on paths inside
the worktree when the sandbox confines them (:func:`edits_files`); ``full-auto`` runs every
command a deny pattern does not stop, when the sandbox confines it — except a container command
under ``containers = "ask"``, which is denied: no mode gives the sandbox more than the user's
own settings do.

Each part is also judged in the forms it may take when run (:func:`forms`): the command a
runner starts (``npx npm publish``, ``python -m twine upload``, ``uv run …``) and the tool with
its leading options dropped (``npm --registry x publish`` as ``npm publish``). Those forms can
only make a verdict stricter (deny and ask patterns); an allow pattern must match the part as
written, since a dropped option can change what a command does. Container engines (docker,
podman, …) are judged by the user's ``containers`` choice: their socket is root on the host.

The policy comes from the user's configuration, never from the repository: a repository must not
be able to grant itself permissions.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["allow", "ask", "deny"]
#: The permission mode, as users know it from Claude Code and Codex (docs/agent.md, "Modes").
Mode = Literal["ask", "auto-edit", "full-auto"]
MODES: tuple[Mode, ...] = ("ask", "auto-edit", "full-auto")
#: ``[agent] containers``: may the agent's commands use a container engine (and its socket)?
ContainerChoice = Literal["ask", "allow", "deny"]
_RANK: dict[Verdict, int] = {"allow": 0, "ask": 1, "deny": 2}
#: Where a simple command ends: control operators, and the parentheses of a subshell, a
#: process substitution ``<(…)`` or a function's ``()``.
_SEPARATOR_CHARS = set(";&|\n()")


#: Commands that publish, push or upload what the agent made (default deny patterns). Tools
#: whose goals or tasks come in a list (maven, gradle) also match the verb after other goals.
PUBLISHING = (
    *("npm publish*", "pnpm publish*", "yarn publish*", "yarn npm publish*", "bun publish*"),
    *("twine upload*", "poetry publish*", "uv publish*", "flit publish*", "hatch publish*"),
    *("pdm publish*", "cargo publish*", "gem push*", "mvn deploy*", "mvn * deploy*"),
    *("gradle publish*", "gradle * publish*", "gradlew publish*", "gradlew * publish*"),
    *("docker push*", "podman push*", "nerdctl push*", "buildah push*", "skopeo copy*"),
    # ``docker image push``, ``docker compose push``, ``docker buildx build --push``
    *("docker * push*", "docker * --push*", "podman * push*", "nerdctl * push*"),
    *("gh release create*", "gh release upload*", "dotnet nuget push*", "nuget push*"),
    *("maturin publish*", "maturin upload*", "lerna publish*", "changeset publish*"),
    *("dart pub publish*", "flutter pub publish*", "mix hex.publish*", "helm push*"),
    *("vsce publish*", "ovsx publish*"),
)
#: The ask patterns used while the user's config sets none: a user's allow pattern overrides
#: them (explicit ``ask`` patterns of the user's own are not overridden).
DEFAULT_ASK = ("git commit*", "git reset*")
#: What ``auto-edit`` runs without asking (when every path it names is inside the worktree).
FILE_COMMANDS = frozenset({"mkdir", "touch", "cp", "mv", "rm", "rmdir"})
#: Words ``auto-edit`` will not take as a path inside the worktree: the shell expands them.
_EXPANDS = re.compile(r"[$`~*?\[\]{}]")
_PLAIN_OPTION = re.compile(r"^(-[A-Za-z]+|--[a-z][a-z-]*)$")
#: Commands that drive a container engine; ``[agent] containers`` decides about them.
CONTAINER_ENGINES = frozenset(
    {"docker", "docker-compose", "podman", "podman-compose", "nerdctl", "buildah", "ctr"}
)
#: Said whenever a command may use a container engine: in the approval request, in the run's
#: warnings.
CONTAINER_WARNING = (
    "the Docker socket is root-equivalent on this host: a command that can use it can start a"
    " privileged container that mounts / (prefer rootless podman where it is installed)"
)


class CommandPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(
        default_factory=list,
        description="patterns run without asking (they override default = 'ask' and the"
        " built-in ask patterns, never a deny pattern nor an ask pattern you set)",
    )
    ask: list[str] | None = Field(
        # Unset: DEFAULT_ASK, which allow patterns override. Installs run without asking: the
        # egress proxy lets them reach the registries only.
        None,
        description="patterns that need the user's yes (denied in unattended runs); unset:"
        " 'git commit*', 'git reset*'",
    )
    deny: list[str] = Field(
        default_factory=lambda: [
            *("sudo *", "su *", "git push*", "git remote*", "ssh *", "scp *"),
            *("curl *", "wget *", "rm -rf /", "rm -rf /*", "rm -rf ~*", "* > /dev/sd*"),
            *PUBLISHING,
        ],
        description="patterns never run",
    )
    default: Verdict = Field("allow", description="verdict for commands no pattern names")

    def tiers(self) -> tuple[list[str], list[str]]:
        """The ask patterns that beat an allow pattern (the user's own), and those an allow
        pattern overrides (the built-in ones, while the user sets none)."""
        return (self.ask, []) if self.ask is not None else ([], list(DEFAULT_ASK))


@dataclass(frozen=True)
class Ruling:
    verdict: Verdict
    reason: str
    #: The line runs a container engine: if it runs, its sandbox needs the engine's socket,
    #: and the user is told what that means (:data:`CONTAINER_WARNING`).
    containers: bool = False


#: Wrappers that run the command after their options, with the options that take a value as
#: the next word (``nice -n 10 git push``); ``timeout`` takes a duration too.
_WRAPPERS: dict[str, frozenset[str]] = {
    "env": frozenset({"-u", "--unset", "-C", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "time": frozenset({"-f", "--format", "-o", "--output"}),
    "stdbuf": frozenset({"-i", "-o", "-e", "--input", "--output", "--error"}),
    "exec": frozenset({"-a"}),
    "timeout": frozenset({"-s", "--signal", "-k", "--kill-after"}),
    **dict.fromkeys(("command", "nohup", "builtin", "setsid"), frozenset[str]()),
    # The shell's own words before a command: ``if git push; then``, ``{ git push; }``.
    **dict.fromkeys(("if", "then", "else", "elif", "while", "until", "do", "!", "{"), frozenset()),
}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")
_PYTHON = re.compile(r"^(python|pypy|py)[0-9.]*$")
#: Commands that run the command named after their options (``npx npm publish``).
_RUNNERS = {
    *(("npx",), ("bunx",), ("pnpx",), ("uvx",), ("pipx", "run"), ("uv", "run")),
    *(("uv", "tool", "run"), ("npm", "exec"), ("pnpm", "exec"), ("pnpm", "dlx")),
    *(("yarn", "exec"), ("yarn", "dlx"), ("poetry", "run"), ("hatch", "run"), ("pdm", "run")),
}
_MAX_FORMS = 32


def _normalise(words: list[str]) -> list[str]:
    """What actually runs: without ``NAME=value`` prefixes and wrappers such as ``env`` or
    ``nohup`` (and their options), with ``/usr/bin/git`` seen as ``git``."""
    words = list(words)
    while words and (_ASSIGNMENT.match(words[0]) or words[0].rsplit("/", 1)[-1] in _WRAPPERS):
        wrapper = words.pop(0).rsplit("/", 1)[-1]
        while words and words[0].startswith("-"):
            if words.pop(0) in _WRAPPERS.get(wrapper, frozenset()) and words:
                words.pop(0)
        if wrapper == "timeout" and words:  # its duration
            words.pop(0)
    if words:
        words[0] = words[0].rsplit("/", 1)[-1]
    return words


def _is_option(word: str) -> bool:
    return word.startswith(("-", "+")) and word not in ("-", "--")


def _positions(words: list[str], start: int) -> list[int]:
    """Where the next command word may be, from ``start`` on: past the options, and past the
    word after an option too (it may be the option's value: ``npm --registry x publish``)."""
    found: list[int] = []
    at = start
    while at < len(words):
        word = words[at]
        if word == "--":
            return [*found, at + 1] if at + 1 < len(words) else found
        after_option = at > start and _is_option(words[at - 1]) and "=" not in words[at - 1]
        if _is_option(word) or (after_option and "=" in word):
            at += 1
            continue
        found.append(at)
        if not after_option:
            return found
        at += 1
    return found


def _python_module(words: list[str]) -> list[str] | None:
    """``python3 -I -m twine upload`` → ``twine upload``."""
    at = 1
    while at < len(words) and _is_option(words[at]):
        word = words[at]
        if word == "-m" and at + 1 < len(words):
            return words[at + 1 :]
        if word.startswith("-m") and len(word) > 2:
            return [word[2:], *words[at + 1 :]]
        if word == "-c":
            return None
        at += 2 if word in ("-W", "-X") else 1
    return None


def forms(words: list[str]) -> list[list[str]]:
    """A simple command as written, and as it may run: the command a runner starts
    (``npx``, ``python -m``, ``uv run``, …) and the tool with its leading options dropped (each
    word after an option read both as its value and as the subcommand)."""
    found = [words]
    todo = [words]
    while todo and len(found) < _MAX_FORMS:
        current = todo.pop()
        new: list[list[str]] = []
        module = _python_module(current) if _PYTHON.match(current[0]) else None
        if module is not None:
            new.append(module)
        for size in (3, 2, 1):
            if tuple(current[:size]) in _RUNNERS:
                new += [current[at:] for at in _positions(current, size)]
                break
        new += [[current[0], *current[at:]] for at in _positions(current, 1) if at > 1]
        for form in map(_normalise, new):
            if form and form not in found:
                found.append(form)
                todo.append(form)
    return found[:_MAX_FORMS]


def _simple_commands(command: str) -> list[list[str]]:
    command = command.replace("\\\n", "")  # a line continuation, as bash reads it
    lexer = shlex.shlex(command, posix=True, punctuation_chars="".join(_SEPARATOR_CHARS))
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) <= _SEPARATOR_CHARS:  # ";", "&&", "|\n", "\n\n", …
            parts.append([])
        else:
            parts[-1].append(token)
    return [words for words in parts if words]


def split_commands(command: str, _depth: int = 0) -> list[str]:
    """The simple commands of a command line, as text (``a && b | c`` → ``a``, ``b``, ``c``),
    including those nested in ``$(…)``, backticks, ``bash -c "…"`` and ``eval``."""
    try:
        parts = _simple_commands(command)
    except ValueError:
        # Unbalanced quotes: judge the line as a whole; bash will reject it anyway.
        return [command.strip()]
    found = [" ".join(words) for words in map(_normalise, parts) if words]
    if _depth < 3:
        nested = [a or b for a, b in _SUBSTITUTION.findall(command)]
        for words in map(_normalise, parts):
            if words and words[0] == "eval":
                nested.append(" ".join(words[1:]))
            elif words and words[0] in _SHELLS and "-c" in words[:-1]:
                nested.append(words[words.index("-c") + 1])
        for inner in nested:
            found.extend(split_commands(inner, _depth + 1))
    return found


def _match(part: str, patterns: list[str]) -> str | None:
    return next((p for p in patterns if fnmatchcase(part, p) or fnmatchcase(part, p + " *")), None)


def edits_files(words: list[str]) -> bool:
    """Whether a simple command (as written) only manages files inside the working directory:
    a :data:`FILE_COMMANDS` command whose options are plain flags and whose other words are
    relative paths that stay inside (no ``..``, nothing the shell expands). What ``auto-edit``
    runs without asking — only where the sandbox confines writes to the worktree, since a
    symlink the repository holds could lead a path out."""
    if not words or words[0] not in FILE_COMMANDS or len(words) < 2:
        return False
    for word in words[1:]:
        if word.startswith("-") and word != "-":
            if not _PLAIN_OPTION.match(word):
                return False
        elif (
            not word
            or word.startswith("/")
            or _EXPANDS.search(word)
            or ".." in PurePosixPath(word).parts
        ):
            return False
    return True


def _judge(
    policy: CommandPolicy, words: list[str], containers: ContainerChoice, edits: bool
) -> tuple[Verdict, str, bool]:
    """One simple command's verdict, why, and whether it runs a container engine. ``edits``:
    file-managing commands run without asking (``auto-edit`` in a sandbox)."""
    part = " ".join(words)
    candidates = forms(words)
    engine = next((form[0] for form in candidates if form[0] in CONTAINER_ENGINES), None)
    choice = f"[agent] containers = {containers!r} in your config"
    users_ask, builtin_ask = policy.tiers()

    def strictest(verdict: Verdict, patterns: list[str]) -> tuple[Verdict, str, bool] | None:
        for form in candidates:
            hit = _match(" ".join(form), patterns)
            if hit is not None:
                shown = repr(part) if form is words else f"{part!r} (run as {' '.join(form)!r})"
                return verdict, f"{shown} matches the {verdict} pattern {hit!r}", bool(engine)
        if engine is not None and containers == verdict:
            return verdict, f"{part!r} uses a container engine ({engine}); {choice}", True
        return None

    found = strictest("deny", policy.deny) or strictest("ask", users_ask)
    if found is not None:
        return found
    hit = _match(part, policy.allow)
    if hit is not None:
        return "allow", f"{part!r} matches the allow pattern {hit!r}", bool(engine)
    if edits and engine is None and edits_files(words):
        return "allow", f"{part!r} manages files inside the worktree (mode auto-edit)", False
    found = strictest("ask", builtin_ask)
    if found is not None:
        return found
    if engine is not None:  # containers == "allow"
        return "allow", f"{part!r} uses a container engine ({engine}); {choice}", True
    return policy.default, f"{part!r} matches no pattern; the default is {policy.default}", False


def _in_mode(
    ruling: tuple[Verdict, str, bool], mode: Mode, sandboxed: bool
) -> tuple[Verdict, str, bool]:
    """``full-auto``: what would be asked runs, in the sandbox only — and a container engine's
    socket is never granted by a mode, only by ``[agent] containers``."""
    verdict, reason, engine = ruling
    if mode != "full-auto" or verdict != "ask":
        return ruling
    if not sandboxed:
        return verdict, f"{reason} (full-auto runs commands unasked only in the sandbox)", engine
    if engine:
        return (
            "deny",
            f"{reason}; mode full-auto never grants a container engine's socket (set"
            " [agent] containers = 'allow' for that)",
            True,
        )
    return "allow", f"{reason}; mode full-auto runs it without asking", False


def decide(
    policy: CommandPolicy,
    command: str,
    *,
    unattended: bool,
    containers: ContainerChoice = "ask",
    mode: Mode = "ask",
    sandboxed: bool = False,
) -> Ruling:
    """The line's verdict: the strictest of its parts'. ``containers`` is the user's choice
    for container engines (``[agent] containers``), ``mode`` the permission mode;
    ``sandboxed``: the command will run confined to the worktree (what ``auto-edit`` needs)."""
    verdict: Verdict = "allow"
    reason = "no pattern names it; the default is allow"
    uses_engine = False
    edits = mode == "auto-edit" and sandboxed
    for part in split_commands(command) or [command]:
        judged = _in_mode(_judge(policy, part.split(" "), containers, edits), mode, sandboxed)
        part_verdict, part_reason, engine = judged
        uses_engine = uses_engine or engine
        if _RANK[part_verdict] > _RANK[verdict] or (
            part_verdict == verdict and reason.startswith("no pattern")
        ):
            verdict, reason = part_verdict, part_reason
    if verdict == "ask" and unattended:
        return Ruling(
            "deny",
            f"{reason}, which needs the user's approval, and this run is unattended",
            uses_engine,
        )
    return Ruling(verdict, reason, uses_engine)
