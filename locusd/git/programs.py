"""What a repository's own configuration may not make Locus's git run.

The agent's commands can write git configuration (``.git/config`` without the sandbox, a
``config.worktree``, a ``.git`` file pointing at a git dir of its own) and files that name a
configured program (``.gitattributes``: ``filter=x``, ``diff=x``, ``merge=x``). Locus's own git
calls run outside the sandbox; a hook, a clean filter or an fsmonitor they started would run
there with the host network. So every one of them gets, through git's own ``GIT_CONFIG_COUNT``
overrides (the highest precedence, any key spelling):

* ``core.hooksPath=/dev/null``, ``core.fsmonitor=false``, ``log.showSignature=false``,
  always: no hook, no fsmonitor, no signature check.
* Editors and pagers through the environment (``GIT_EDITOR=:``, ``GIT_PAGER=cat``), which
  beats any config; trace2 targets off.
* For each key found in the effective configuration (``git config --list --show-scope``, read
  right before the call; skipped for the read-only commands of :data:`NO_PROGRAMS`, which
  run none of these) that names a program git would run and comes from the repository
  (scope ``local``/``worktree``, includes too), git's default or an empty value: an empty
  filter is no filter. The user's own files (``system``, ``global``) are kept: ``git lfs
  install`` puts its filter there, and the sandbox keeps them out of the agent's reach.

Diff drivers (``diff.external``, ``diff.<x>.command``/``textconv``) cannot be emptied (git then
tries to run ""): every diff Locus computes passes ``--no-ext-diff --no-textconv`` instead.
Credential helpers and ``core.sshCommand`` are kept: they run only for a fetch or a push, which
act for the user with the user's credentials (a repository-local ``sshCommand`` is a common
way to pick a deploy key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

#: Always set: no hooks (every event, from any directory), no fsmonitor (a hook program too),
#: no signature checks in ``git log`` (they run ``gpg.program``).
ALWAYS = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("log.showSignature", "false"),
)
#: Commands that never read a working tree's files through a filter, merge, sign or talk to
#: a remote: with :data:`ALWAYS` they run no program whatever the config says, so they skip
#: the configuration listing (half of the cost of a cheap call such as ``rev-parse``).
#: ``git worktree`` is named with its subcommand.
NO_PROGRAMS = frozenset(
    {
        *("rev-parse", "show-ref", "for-each-ref", "remote", "config", "merge-base", "log"),
        *("ls-files", "read-tree", "symbolic-ref", "cat-file"),
        *("worktree list", "worktree prune"),
    }
)
#: Keys (lower-cased section and name; subsection as written) that run a program, and the
#: value that makes them harmless: git's default, or empty where empty means "none".
_PROGRAM_KEYS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"filter\..+\.(clean|smudge|process)", re.IGNORECASE), ""),
    (re.compile(r"merge\..+\.driver", re.IGNORECASE), ""),
    (re.compile(r"core\.(gitproxy|alternaterefscommand)", re.IGNORECASE), ""),
    (re.compile(r"gpg\.program", re.IGNORECASE), "gpg"),
    (re.compile(r"gpg\.openpgp\.program", re.IGNORECASE), "gpg"),
    (re.compile(r"gpg\.x509\.program", re.IGNORECASE), "gpgsm"),
    (re.compile(r"gpg\.ssh\.program", re.IGNORECASE), "ssh-keygen"),
    (re.compile(r"gpg\.ssh\.defaultkeycommand", re.IGNORECASE), ""),
    (re.compile(r"remote\..+\.uploadpack", re.IGNORECASE), "git-upload-pack"),
    (re.compile(r"remote\..+\.receivepack", re.IGNORECASE), "git-receive-pack"),
    (re.compile(r"submodule\..+\.update", re.IGNORECASE), "checkout"),
)
#: Scopes that are the user's own files, outside the repository.
TRUSTED_SCOPES = frozenset({"system", "global", "command"})
#: Environment that switches off what config could otherwise turn on: editors and pagers (":"
#: is git's "no editor"), and trace2 targets (a file or a Unix socket the config names).
ENV = {
    "GIT_EDITOR": ":",
    "GIT_SEQUENCE_EDITOR": ":",
    "GIT_PAGER": "cat",
    "GIT_TRACE2": "0",
    "GIT_TRACE2_EVENT": "0",
    "GIT_TRACE2_PERF": "0",
}


def neutral_value(key: str, value: str) -> str | None:
    """The harmless value for ``key`` when it names a program, else None. A submodule's
    ``update`` is only a program when it starts with ``!``."""
    for pattern, neutral in _PROGRAM_KEYS:
        if pattern.fullmatch(key):
            if key.lower().endswith(".update") and not value.startswith("!"):
                return None
            return neutral
    return None


def parse_listing(listing: str) -> list[tuple[str, str, str]]:
    """(scope, key, value) of ``git config --list -z --show-scope`` output."""
    fields = listing.split("\0")
    found = []
    for scope, entry in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = entry.partition("\n")
        found.append((scope, key, value))
    return found


def overrides(listing: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` overrides for a configuration listing: :data:`ALWAYS`, then each
    program key from a repository scope (and a filter's ``required`` switched off, so that an
    emptied required filter does not fail the call)."""
    found = list(ALWAYS)
    for scope, key, value in parse_listing(listing):
        if scope in TRUSTED_SCOPES:
            continue
        neutral = neutral_value(key, value)
        if neutral is None:
            continue
        found.append((key, neutral))
        if key.lower().startswith("filter."):
            found.append((f"{key.rsplit('.', 1)[0]}.required", "false"))
    return list(dict.fromkeys(found))


def config_env(pairs: Sequence[tuple[str, str]], env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``pairs`` added as ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` after any
    the environment already holds (git reads them like ``-c``, with any key spelling)."""
    try:
        start = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        start = 0
    added = dict(env) | ENV
    for offset, (key, value) in enumerate(pairs):
        added[f"GIT_CONFIG_KEY_{start + offset}"] = key
        added[f"GIT_CONFIG_VALUE_{start + offset}"] = value
    added["GIT_CONFIG_COUNT"] = str(start + len(pairs))
    return added


def command_of(args: Sequence[str]) -> str:
    """The git command ``args`` run (``-c k=v``/``-C dir`` and other leading options skipped),
    with the subcommand for ``git worktree``: ``"worktree add"``, ``"status"``."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("-c", "-C") else rest[1:]
    if rest[:1] == ["worktree"]:
        return " ".join(rest[:2])
    return rest[0] if rest else ""


def needs_listing(args: Sequence[str]) -> bool:
    """Whether ``git args`` could run a program the configuration names beyond what
    :data:`ALWAYS` switches off: every command not in :data:`NO_PROGRAMS`."""
    return command_of(args) not in NO_PROGRAMS


def listing_argv(executable: str) -> list[str]:
    """The command that lists the effective configuration, with where each key comes from."""
    return [executable, "config", "--list", "-z", "--show-scope"]
