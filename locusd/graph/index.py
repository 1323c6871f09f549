"""The structural index of one checkout: its paths at HEAD, its manifests, kept up to date.

Paths come from ``git ls-tree -r HEAD`` (what is committed; uncommitted files are not
indexed), minus what ``.locusignore`` names (as :class:`locusd.privacy.Scrubber` reads it:
an ignored path is never listed, counted or read). Manifests are read from git's object
database by blob id, never from the working tree: no symlink is followed (a symlink is mode
120000 and is skipped), the size is known before reading (larger than the cap: skipped
unread), and the agent's uncommitted edits play no part.

The state — HEAD and each manifest's blob id with what was parsed from it — is kept per
checkout in the daemon's state dir, written atomically (a kill -9 leaves the old state or the
new, never a torn file; a damaged one is ignored and the index is rebuilt). When HEAD moves,
only the manifests whose blob changed are read again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from locusd.crashpoints import crashpoint
from locusd.git.repo import Repository
from locusd.graph import structure
from locusd.graph.structure import Manifest, Skipped, Structure
from locusd.privacy import Scrubber

STATE_VERSION = 1
_SYMLINK, _SUBMODULE = "120000", "160000"


@dataclass(frozen=True)
class Indexed:
    """One index: the structure, the commit it describes, and how many manifests were read
    (0 when every one came from the saved state)."""

    head: str | None
    structure: Structure
    manifests_read: int


def state_file(state_dir: Path, checkout: Path) -> Path:
    """Where the index of ``checkout`` is kept (one file per checkout path)."""
    digest = hashlib.sha256(str(checkout.resolve()).encode("utf-8", "surrogateescape"))
    return state_dir / "graph" / f"{digest.hexdigest()[:32]}.json"


def index_checkout(checkout: Path, state_dir: Path, *, save: bool = True) -> Indexed:
    """Index ``checkout`` at its HEAD, reusing the saved state; ``save=False`` leaves the
    saved state as it was (``locus graph show --dry-run``)."""
    repo = Repository(checkout)
    head = repo.resolve("HEAD")
    entries = _tree(repo) if head else []
    ignored = Scrubber.for_checkout(repo.path, {}).ignored
    saved = _load(state_file(state_dir, repo.path))
    blobs: dict[str, str] = {}
    manifests: dict[str, Manifest | Skipped] = {}
    paths: list[str] = []
    read = 0
    readable = _first_manifests(entries, ignored)
    for mode, blob, size, path in entries:
        if ignored(path):
            continue
        paths.append(path)
        if structure.manifest_kind(path) is None or structure.path_problem(path):
            continue
        blobs[path] = blob
        if mode in (_SYMLINK, _SUBMODULE):
            manifests[path] = Skipped(path, "a symbolic link or submodule, not read")
        elif size > structure.MAX_MANIFEST_BYTES:
            manifests[path] = Skipped(
                path, f"larger than {structure.MAX_MANIFEST_BYTES // 1024} KiB"
            )
        elif path not in readable:
            manifests[path] = Skipped(path, f"past the first {structure.MAX_MANIFESTS} manifests")
        elif (cached := saved.get(path)) is not None and cached[0] == blob:
            manifests[path] = cached[1]
        else:
            data = repo.output("cat-file", "blob", blob, timeout=60)
            manifests[path] = structure.parse_manifest(
                path, data.encode("utf-8", "surrogateescape")
            )
            read += 1
    if save:
        _save(state_file(state_dir, repo.path), head, blobs, manifests)
    return Indexed(head, structure.build(paths, manifests), read)


def _first_manifests(
    entries: list[tuple[str, str, int, str]], ignored: Callable[[str], bool]
) -> set[str]:
    """The manifests that will be read: the shallowest first (the repository's own before a
    vendored package's), up to :data:`~locusd.graph.structure.MAX_MANIFESTS`."""
    found = [p for *_, p in entries if structure.manifest_kind(p) and not ignored(p)]
    found.sort(key=lambda p: (p.count("/"), p))
    return set(found[: structure.MAX_MANIFESTS])


def _tree(repo: Repository) -> list[tuple[str, str, int, str]]:
    """(mode, object id, size, path) of every entry at HEAD, submodules included."""
    out = repo.output("ls-tree", "-r", "-l", "-z", "--full-tree", "HEAD", timeout=120)
    entries = []
    for record in out.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, _kind, blob, size = meta.split(maxsplit=3)
        entries.append((mode, blob, int(size) if size.strip().isdigit() else 0, path))
    return entries


def _load(file: Path) -> dict[str, tuple[str, Manifest | Skipped]]:
    """The saved manifests (path → blob id, parsed); empty when there is no usable state."""
    try:
        doc = json.loads(file.read_bytes())
        if doc.get("version") != STATE_VERSION:
            return {}
        return {path: (entry["blob"], _parsed(entry)) for path, entry in doc["manifests"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # missing or damaged: rebuilt from the repository


def _parsed(entry: dict[str, Any]) -> Manifest | Skipped:
    if "reason" in entry:
        return Skipped(entry["path"], entry["reason"])
    deps = {group: tuple(names) for group, names in entry["dependencies"].items()}
    return Manifest(entry["path"], entry["ecosystem"], deps, tuple(entry["commands"]))


def _save(
    file: Path, head: str | None, blobs: dict[str, str], manifests: dict[str, Manifest | Skipped]
) -> None:
    """Write the state atomically: a temporary file, fsynced, renamed over the old one."""
    doc = {
        "version": STATE_VERSION,
        "head": head,
        "manifests": {p: {"blob": blobs[p], **asdict(m)} for p, m in sorted(manifests.items())},
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(doc, sort_keys=True).encode("utf-8", "surrogateescape")
    fd, temp = tempfile.mkstemp(dir=file.parent, prefix=".graph-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data[: len(data) // 2])
            out.flush()
            crashpoint("graph.state_writing")
            out.write(data[len(data) // 2 :])
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, file)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(file.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
