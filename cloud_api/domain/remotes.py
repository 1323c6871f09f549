"""Git remote fingerprints: one normal form for every way of writing the same remote.

A project lists the remotes it serves; a worker lists the remotes of the repositories on its
machine. Both sides normalise with :func:`fingerprint` so ``git@github.com:Acme/App.git`` and
``https://github.com/Acme/App`` match. Only this string ever reaches the cloud, never a path.
"""

from __future__ import annotations

import re

_SCP_LIKE = re.compile(r"^(?:[\w.+-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$", re.I)
#: A fingerprint itself (``github.com/acme/app``): what the API returns can be sent back.
_FINGERPRINT = re.compile(r"^(?P<host>[\w-]+(?:\.[\w-]+)+|localhost)/(?P<path>[^\s:]+)$")


class InvalidRemote(ValueError):
    pass


def fingerprint(remote: str) -> str:
    """Return ``host/owner/repo`` (host lower-cased, no scheme, user, port or ``.git``).
    Idempotent: a fingerprint is its own fingerprint, so a list read from the API (a project's
    remotes) can be written back unchanged."""
    text = remote.strip()
    match = _URL.match(text) or _SCP_LIKE.match(text) or _FINGERPRINT.match(text)
    if not match:
        raise InvalidRemote(
            f"{remote!r} is not a git remote; use a form such as "
            "'https://host/owner/repo', 'git@host:owner/repo.git' or 'host/owner/repo'"
        )
    path = match["path"].strip("/")
    path = path.removesuffix(".git").strip("/")
    if not path:
        raise InvalidRemote(f"{remote!r} names a host but no repository path")
    return f"{match['host'].lower()}/{path}"
