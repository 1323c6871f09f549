"""A repository's structure from its paths and the bytes of its manifests — pure, no IO.

What is read from inside a file is exactly two things: a manifest's dependency NAMES and the
names of well-known scripts/targets (``test``, ``lint``, ``build``…), which only select
commands from a fixed table here. Every other byte of every file is ignored: no contents, no
identifiers, no descriptions, no versions. The repository is untrusted: a manifest that is
too large, not UTF-8, broken TOML/JSON, or a path with control characters is skipped with a
reason, never an exception.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from identify import extensions
from identify.identify import tags_from_filename
from packaging.requirements import InvalidRequirement, Requirement

#: A manifest larger than this is skipped (the real ones are a few KiB).
MAX_MANIFEST_BYTES = 256 * 1024
#: At most this many manifests are read in one repository (each is one git command).
MAX_MANIFESTS = 500
#: At most this many dependency names are kept from one manifest.
MAX_DEPENDENCIES = 500
#: The cloud's node keys are at most 500 characters.
MAX_PATH_CHARS = 500

#: Dependency groups: Locus's own four names (a manifest's group names are never read).
RUNTIME, OPTIONAL, DEV, BUILD = "runtime", "optional", "dev", "build"
_REQUIREMENTS = re.compile(r"^requirements[\w.-]*\.(txt|in)$")
_MANIFESTS = {
    "pyproject.toml": "python",
    "package.json": "npm",
    "Cargo.toml": "cargo",
    "go.mod": "go",
    "Makefile": "make",
    "makefile": "make",
    "GNUmakefile": "make",
}
#: What a dependency name may look like: PEP 508 names, npm's @scope/name, cargo crate names,
#: go module paths. Anything else (a URL, prose, a path outside) is not a name and is dropped.
_NAME = {
    "python": re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$"),
    "npm": re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]{0,60}/)?[a-z0-9][a-z0-9._~-]{0,100}$"),
    "cargo": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"),
    "go": re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~/-]{0,199}$"),
}
#: package.json script keys → the command run for them (the key selects; its value is unread).
_NPM_SCRIPTS = {
    "build": "npm run build",
    "test": "npm test",
    "lint": "npm run lint",
    "typecheck": "npm run typecheck",
    "format": "npm run format",
}
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAKE_TARGETS = ("all", "build", "test", "check", "lint", "format", "fmt", "typecheck")
_MAKE_TARGET = re.compile(r"^([A-Za-z][\w.-]*)\s*::?(?!=)")
#: pyproject.toml [tool.X] tables → the command they configure.
_PY_TOOLS = {"pytest": "pytest", "ruff": "ruff check .", "mypy": "mypy", "tox": "tox"}
_GO_REQUIRE = re.compile(r"^\s*(?:require\s+)?([^\s()]+)\s+v[^\s]+")
#: identify's tags that are not a language.
_NOT_LANGUAGE = {"text", "header", "plain-text", "executable", "non-executable"}
_LANGUAGE_ALIAS = {"pyi": "python", "pyproject": "toml", "bash": "shell", "zsh": "shell", "ts": "typescript",
                   "tsx": "typescript", "jsx": "javascript", "c++": "cpp"}  # fmt: skip
#: Directories whose children are the modules (``src/foo``, ``packages/bar``).
_CONTAINERS = {"src", "lib", "libs", "packages", "crates", "apps", "cmd", "internal", "pkg"}


@dataclass(frozen=True)
class Manifest:
    """What one manifest tells: dependency names by group and the commands it implies."""

    path: str
    ecosystem: str
    dependencies: dict[str, tuple[str, ...]] = field(default_factory=dict)  # RUNTIME… → names
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A path or manifest left out, and why (shown by ``locus graph show``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Structure:
    paths: tuple[str, ...]
    languages: dict[str, int]
    modules: dict[str, int]
    manifests: tuple[Manifest, ...]
    skipped: tuple[Skipped, ...]

    @property
    def commands(self) -> dict[str, tuple[str, ...]]:
        """Command → the manifests that imply it."""
        found: dict[str, list[str]] = {}
        for manifest in self.manifests:
            for command in manifest.commands:
                found.setdefault(command, []).append(manifest.path)
        return {command: tuple(paths) for command, paths in sorted(found.items())}


def manifest_kind(path: str) -> str | None:
    """The ecosystem of a manifest at ``path`` (by its file name), or None."""
    name = _name(path)
    if _REQUIREMENTS.match(name):
        return "python"
    return _MANIFESTS.get(name)


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be indexed (shown, uploaded as a key), or None."""
    if _ASCII_CONTROL.search(path) if path.isascii() else _invisible(path):
        return "the name has control or invisible formatting characters"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "the name is not UTF-8"
    if len(path) > MAX_PATH_CHARS:
        return f"the name is longer than {MAX_PATH_CHARS} characters"
    return None


def language(path: str) -> str | None:
    """The language of ``path`` from its file name alone (identify's table)."""
    name = _name(path)
    if any(part in extensions.NAMES for part in (name, *name.split("."))):
        return _language(tags_from_filename(name))  # Makefile, Dockerfile.dev: by name
    return _by_extension(os.path.splitext(name)[1].lower())


@functools.lru_cache(maxsize=4096)
def _by_extension(extension: str) -> str | None:
    """The language of any file name with this extension that identify does not know by name
    (50,000 files have a few dozen extensions)."""
    return _language(tags_from_filename(f"\0{extension}"))


def _language(tags: set[str]) -> str | None:
    if "binary" in tags or "image" in tags:
        return None
    named = sorted({_LANGUAGE_ALIAS.get(tag, tag) for tag in tags - _NOT_LANGUAGE})
    return named[0] if named else None


def module(path: str) -> str | None:
    """The module ``path`` belongs to: its top directory, or a child of a container
    directory (``src/foo``); None for a file at the top."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    if parts[0] in _CONTAINERS and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    return parts[0]


def parse_manifest(path: str, data: bytes) -> Manifest | Skipped:
    """Dependency names and commands from one manifest's bytes; a :class:`Skipped` for
    anything that is not a well-formed manifest of its kind."""
    kind = manifest_kind(path)
    if kind is None:
        return Skipped(path, "not a manifest")
    if len(data) > MAX_MANIFEST_BYTES:
        return Skipped(path, f"larger than {MAX_MANIFEST_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Skipped(path, "not UTF-8")
    name = _name(path)
    try:
        if name == "pyproject.toml":
            return _pyproject(path, tomllib.loads(text))
        if name == "Cargo.toml":
            return _cargo(path, tomllib.loads(text))
        if name == "package.json":
            return _package_json(path, json.loads(text))
    except tomllib.TOMLDecodeError:
        return Skipped(path, "not valid TOML")
    except json.JSONDecodeError:
        return Skipped(path, "not valid JSON")
    except RecursionError:
        return Skipped(path, "nested too deeply")
    if kind == "go":
        return Manifest(path, "go", _named("go", {RUNTIME: list(_go_requires(text))}),
                        ("go build ./...", "go test ./..."))  # fmt: skip
    if kind == "make":
        return Manifest(path, "make", {}, _make_commands(text))
    group = DEV if re.search(r"dev|test|lint|doc", name) else RUNTIME
    return Manifest(path, "python", _named("python", {group: _requirements(text)}))


def build(paths: Iterable[str], manifests: Mapping[str, Manifest | Skipped]) -> Structure:
    """The structure of a repository of ``paths`` (already filtered: no ignored path), with
    its parsed manifests."""
    kept: list[str] = []
    skipped: list[Skipped] = []
    for path in paths:
        problem = path_problem(path)
        if problem is None:
            kept.append(path)
        else:
            skipped.append(Skipped(ascii(path)[1:-1], problem))  # escaped: safe to print
    kept.sort()
    languages = Counter(lang for lang in map(language, kept) if lang)
    modules = Counter(mod for mod in map(module, kept) if mod)
    parsed = [manifests[p] for p in kept if p in manifests]
    skipped += [m for m in parsed if isinstance(m, Skipped)]
    return Structure(
        paths=tuple(kept),
        languages=dict(sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))),
        modules=dict(sorted(modules.items(), key=lambda kv: (-kv[1], kv[0]))),
        manifests=tuple(m for m in parsed if isinstance(m, Manifest)),
        skipped=tuple(sorted(skipped, key=lambda s: s.path)),
    )


def _name(path: str) -> str:
    """The file name of a repository path (``/``-separated, as git lists it)."""
    return path.rpartition("/")[2]


def _invisible(path: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in path)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _requirement_names(specs: Iterable[str]) -> list[str]:
    names = []
    for spec in specs:
        try:
            names.append(Requirement(spec).name)
        except InvalidRequirement:
            continue  # not a requirement: nothing of it is kept
    return names


def _named(ecosystem: str, groups: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Only strings shaped like a dependency name of ``ecosystem``, de-duplicated, sorted,
    capped. ``groups`` are this module's own four names, never the manifest's group names."""
    shape = _NAME[ecosystem]
    out: dict[str, tuple[str, ...]] = {}
    total = 0
    for group, names in sorted(groups.items()):
        kept = sorted({n for n in names if shape.match(n)})[: MAX_DEPENDENCIES - total]
        total += len(kept)
        if kept:
            out[group] = tuple(kept)
    return out


def _pyproject(path: str, doc: dict[str, Any]) -> Manifest:
    project = _table(doc.get("project"))
    tool = _table(doc.get("tool"))
    poetry = _table(_table(tool.get("poetry")).get("dependencies"))
    runtime = _requirement_names(_strings(project.get("dependencies")))
    groups = {
        RUNTIME: runtime + [name for name in poetry if name != "python"],
        OPTIONAL: [n for specs in _table(project.get("optional-dependencies")).values()
                   for n in _requirement_names(_strings(specs))],
        DEV: [n for specs in _table(doc.get("dependency-groups")).values()
              for n in _requirement_names(_strings(specs))],
    }  # fmt: skip
    commands = tuple(command for name, command in _PY_TOOLS.items() if name in tool)
    return Manifest(path, "python", _named("python", groups), commands)


def _cargo(path: str, doc: dict[str, Any]) -> Manifest:
    sections = {"dependencies": RUNTIME, "dev-dependencies": DEV, "build-dependencies": BUILD}
    groups: dict[str, list[str]] = {g: [] for g in sections.values()}
    groups[RUNTIME] += list(_table(_table(doc.get("workspace")).get("dependencies")))
    for table in [doc, *_table(doc.get("target")).values()]:
        for section, group in sections.items():
            groups[group] += list(_table(_table(table).get(section)))
    return Manifest(path, "cargo", _named("cargo", groups), ("cargo build", "cargo test"))


def _package_json(path: str, doc: Any) -> Manifest | Skipped:
    if not isinstance(doc, dict):
        return Skipped(path, "not a JSON object")
    sections = {"dependencies": RUNTIME, "devDependencies": DEV,
                "peerDependencies": OPTIONAL, "optionalDependencies": OPTIONAL}  # fmt: skip
    groups: dict[str, list[str]] = {g: [] for g in sections.values()}
    for section, group in sections.items():
        groups[group] += list(_table(doc.get(section)))
    scripts = _table(doc.get("scripts"))
    commands = tuple(command for key, command in _NPM_SCRIPTS.items() if key in scripts)
    return Manifest(path, "npm", _named("npm", groups), commands)


def _requirements(text: str) -> list[str]:
    specs = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")) and "://" not in line:
            specs.append(line)
    return _requirement_names(specs)


def _go_requires(text: str) -> Iterator[str]:
    block = False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("require") and line.endswith("("):
            block = True
        elif block and line == ")":
            block = False
        elif block or line.startswith("require "):
            found = _GO_REQUIRE.match(line)
            if found:
                yield found.group(1)


def _make_commands(text: str) -> tuple[str, ...]:
    targets = set()
    for line in text.splitlines():
        found = _MAKE_TARGET.match(line)
        if found and found.group(1) in _MAKE_TARGETS:
            targets.add(found.group(1))
    return tuple(f"make {t}" for t in _MAKE_TARGETS if t in targets)
