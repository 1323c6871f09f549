"""A stand-in for a container engine's socket (there is no Docker daemon on a test machine): a
real listening Unix socket that counts connections, at a path a sandboxed command would see
were it not hidden — under the user's real home directory, not under /tmp (each sandboxed
command gets a /tmp of its own, which would hide the socket whatever the code under test did).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.agent.sandbox import SHARED_SCRATCH
from tests.support.listener import CountingListener

#: A command that connects to the socket ``$DOCKER_HOST`` names and says whether it could.
CONNECT = (
    'python3 -c "import os, socket; s = socket.socket(socket.AF_UNIX); '
    "s.connect(os.environ['DOCKER_HOST'].removeprefix('unix://')); print('engine reached')\""
)


class EngineSocket(CountingListener):
    """A listening Unix socket whose accepted connections are counted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        super().__init__(server)


@contextlib.contextmanager
def visible_dir() -> Iterator[Path]:
    """A fresh, short directory under the user's real home (whatever ``$HOME`` says), which
    the sandbox shows read-only; skips where the home lies under a scratch place."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    if any(home == Path(p) or Path(p) in home.parents for p in SHARED_SCRATCH):
        pytest.skip(f"the home directory ({home}) is under {SHARED_SCRATCH}")
    path = Path(tempfile.mkdtemp(prefix=".lx", dir=home))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def engine_socket(where: Path, name: str = "docker.sock") -> Iterator[EngineSocket]:
    """A listening socket at ``where / name`` (parents made), closed on exit."""
    (where / name).parent.mkdir(parents=True, exist_ok=True)
    found = EngineSocket(where / name)
    try:
        yield found
    finally:
        found.close()
