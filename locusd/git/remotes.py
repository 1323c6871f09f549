"""A checkout's remotes as the cloud knows them: fingerprints (``github.com/acme/app``), which is
how tasks are matched to the repositories a daemon serves."""

from __future__ import annotations

from pathlib import Path

from cloud_api.domain.remotes import InvalidRemote, fingerprint
from locusd.git.cli import GitFailed
from locusd.git.repo import Repository, RepositoryError


def remotes(checkout: Path) -> dict[str, str]:
    """fingerprint → remote URL, for every remote of ``checkout`` a cloud project can name;
    none when it is not a repository (the caller says that nothing can match, and how to add a
    remote). A remote that is a local path (``/srv/git/app``, a clone of a clone) names no
    hosted repository: it is passed over, not an error."""
    try:
        found = Repository(checkout).remotes()
    except (RepositoryError, GitFailed):
        return {}
    named = {}
    for url in found.values():
        try:
            named[fingerprint(url)] = url
        except InvalidRemote:
            continue
    return named
