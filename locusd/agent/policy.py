"""Which commands the agent may run without asking: allow / ask / deny patterns. Pure logic.

A command line is split into its simple commands (at ``;``, ``&&``, ``||``, ``|``, ``&`` and
newlines, with shell quoting respected) and each is matched against shell-style glob patterns
(``git push*``). The strictest verdict over all parts wins, and among patterns deny beats ask
beats allow; a part no pattern names gets the ``default``. An unattended run (no one to ask)
treats "ask" as "deny" and says so, so the model can choose another way.

The policy comes from the user's configuration, never from the repository: a repository must not
be able to grant itself permissions.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["allow", "ask", "deny"]
_RANK: dict[Verdict, int] = {"allow": 0, "ask": 1, "deny": 2}
_SEPARATOR_CHARS = set(";&|\n")


class CommandPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="patterns run without asking")
    ask: list[str] = Field(
        default_factory=lambda: ["pip install*", "npm install*", "git commit*", "git reset*"],
        description="patterns that need the user's yes (denied in unattended runs)",
    )
    deny: list[str] = Field(
        default_factory=lambda: [
            *("sudo *", "su *", "git push*", "git remote*", "ssh *", "scp *"),
            *("curl *", "wget *", "rm -rf /", "rm -rf /*", "rm -rf ~*", "* > /dev/sd*"),
        ],
        description="patterns never run",
    )
    default: Verdict = Field("allow", description="verdict for commands no pattern names")


@dataclass(frozen=True)
class Ruling:
    verdict: Verdict
    reason: str


_WRAPPERS = {"env", "command", "exec", "nohup", "time", "nice", "builtin", "stdbuf", "setsid"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")


def _normalise(words: list[str]) -> list[str]:
    """What actually runs: without ``NAME=value`` prefixes and wrappers such as ``env`` or
    ``nohup`` (and their options), with ``/usr/bin/git`` seen as ``git``."""
    words = list(words)
    while words and (_ASSIGNMENT.match(words[0]) or words[0].rsplit("/", 1)[-1] in _WRAPPERS):
        words.pop(0)
        while words and words[0].startswith("-"):
            words.pop(0)
    if words:
        words[0] = words[0].rsplit("/", 1)[-1]
    return words


def _simple_commands(command: str) -> list[list[str]]:
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


def decide(policy: CommandPolicy, command: str, *, unattended: bool) -> Ruling:
    verdict: Verdict = "allow"
    reason = "no pattern names it; the default is allow"
    parts = split_commands(command) or [command]
    for part in parts:
        for candidate, patterns in (("deny", policy.deny), ("ask", policy.ask)):
            hit = _match(part, patterns)
            if hit is not None:
                part_verdict: Verdict = "deny" if candidate == "deny" else "ask"
                part_reason = f"{part!r} matches the {candidate} pattern {hit!r}"
                break
        else:
            hit = _match(part, policy.allow)
            if hit is not None:
                part_verdict, part_reason = "allow", f"{part!r} matches the allow pattern {hit!r}"
            else:
                part_verdict = policy.default
                part_reason = f"{part!r} matches no pattern; the default is {policy.default}"
        if _RANK[part_verdict] > _RANK[verdict] or (
            part_verdict == verdict and reason.startswith("no pattern")
        ):
            verdict, reason = part_verdict, part_reason
    if verdict == "ask" and unattended:
        return Ruling(
            "deny", f"{reason}, which needs the user's approval, and this run is unattended"
        )
    return Ruling(verdict, reason)
