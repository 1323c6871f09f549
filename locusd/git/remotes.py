"""A checkout's remotes as the cloud knows them: fingerprints (``github.com/acme/app``), which is
how tasks are matched to the repositories a daemon serves."""

from __future__ import annotations

import shutil
from pathlib import Path

from cloud_api.domain.remotes import fingerprint
from locusd.git.cli import Git


def remotes(checkout: Path) -> dict[str, str]:
    """fingerprint → remote URL, for every remote of ``checkout``."""
    git = Git(shutil.which("git") or "git")
    names = git.run(checkout, "remote", timeout=30)
    found = {}
    for name in names.stdout.split():
        url = git.run(checkout, "remote", "get-url", name, timeout=30).stdout.strip()
        if url:
            found[fingerprint(url)] = url
    return found
