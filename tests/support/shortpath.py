"""A temporary directory with a short path, for Unix sockets: AF_UNIX paths are limited to
~107 bytes, and pytest's tmp_path (under $TMPDIR, which may be long) is not. Under /tmp itself,
whatever $TMPDIR says."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    """A fresh directory under /tmp, removed on exit."""
    path = Path(tempfile.mkdtemp(prefix="lx", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
