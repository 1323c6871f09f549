"""The default egress allowlist of a run: which package registries a sandboxed command may reach.

Pure logic over files and an environment handed in (no network). Two inputs decide it:

- the *presence* of manifests in the worktree (``package.json``, ``Cargo.toml``, …), which says
  which ecosystems the repository uses; nothing written inside the repository is read, so a
  repository (untrusted: the agent writes it) can choose among the ecosystems but never name a
  host — a worktree ``.npmrc``, ``pip.conf``, ``.cargo/config.toml`` or ``[tool.uv]`` table adds
  nothing;
- the user's own package-manager configuration (files under ``home`` and the system root, and the
  environment the caller passes, which must be the user's own, never a sandboxed command's).

Per detected ecosystem the public registries of :data:`PUBLIC_REGISTRIES` are allowed unless the
user's configuration *replaces* the default registry (pip's ``index-url``, npm's ``registry=``,
cargo's ``replace-with`` for crates.io, ``GOPROXY``, a Maven mirror of ``central``): someone who
set up a private mirror wants their installs to go there, not around it. Registries the user
*adds* (``extra-index-url``, ``@scope:registry``, ``[registries.x]``) are allowed beside the
public ones. Only hosts and ports come out, never a URL's userinfo (a token), and a malformed file
is skipped with a warning that quotes none of its text.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeXML
from defusedxml import DefusedXmlException

from locusd.agent.egress.rules import Rule, normalise_host


class Ecosystem(StrEnum):
    NPM = "npm"  # npm, yarn, pnpm and bun all fetch from the npm registry and read .npmrc
    PYTHON = "python"
    CARGO = "cargo"
    GO = "go"
    MAVEN = "maven"
    GRADLE = "gradle"
    RUBYGEMS = "rubygems"
    COMPOSER = "composer"
    NUGET = "nuget"


#: Public registry hosts per ecosystem (port 443), allowed when the repository uses the ecosystem
#: and the user's configuration does not replace its default registry. Edit here; docs/agent.md
#: shows this table (a test keeps them equal). Deliberately absent: git hosts (github.com,
#: codeload.github.com, gitlab.com, …) and general-purpose storage (storage.googleapis.com,
#: objects.githubusercontent.com): code can be pushed, gisted or uploaded there, so git
#: dependencies and release downloads need the user's explicit allow.
PUBLIC_REGISTRIES: dict[Ecosystem, tuple[str, ...]] = {
    Ecosystem.NPM: ("registry.npmjs.org", "registry.yarnpkg.com"),
    Ecosystem.PYTHON: ("pypi.org", "files.pythonhosted.org"),
    Ecosystem.CARGO: ("crates.io", "index.crates.io", "static.crates.io"),
    Ecosystem.GO: ("proxy.golang.org", "sum.golang.org"),
    Ecosystem.MAVEN: ("repo.maven.apache.org", "repo1.maven.org"),
    Ecosystem.GRADLE: (
        *("plugins.gradle.org", "plugins-artifacts.gradle.org"),
        *("services.gradle.org", "downloads.gradle.org"),
        *("repo.maven.apache.org", "repo1.maven.org"),
    ),
    Ecosystem.RUBYGEMS: ("rubygems.org", "index.rubygems.org"),
    Ecosystem.COMPOSER: ("repo.packagist.org", "packagist.org"),
    Ecosystem.NUGET: ("api.nuget.org",),
}

#: File names (shell globs) whose presence means the repository uses the ecosystem.
MANIFESTS: dict[Ecosystem, tuple[str, ...]] = {
    Ecosystem.NPM: (
        *("package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock"),
        *("pnpm-lock.yaml", "pnpm-workspace.yaml", "bun.lock", "bun.lockb"),
    ),
    Ecosystem.PYTHON: (
        *("pyproject.toml", "setup.py", "setup.cfg", "requirements*.txt", "Pipfile"),
        *("Pipfile.lock", "uv.lock", "poetry.lock", "pdm.lock"),
    ),
    Ecosystem.CARGO: ("Cargo.toml", "Cargo.lock"),
    Ecosystem.GO: ("go.mod", "go.sum", "go.work"),
    Ecosystem.MAVEN: ("pom.xml", "mvnw"),
    Ecosystem.GRADLE: (
        *("build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts"),
        "gradlew",
    ),
    Ecosystem.RUBYGEMS: ("Gemfile", "Gemfile.lock", "*.gemspec"),
    Ecosystem.COMPOSER: ("composer.json", "composer.lock"),
    Ecosystem.NUGET: ("*.csproj", "*.fsproj", "*.vbproj", "*.sln", "packages.config"),
}

#: Directories one level down that are not the project's own (dependencies, build output).
_NOT_SCANNED = frozenset(
    {"node_modules", "vendor", "target", "build", "dist", "venv", "__pycache__"}
)
MAX_ENTRIES = 2000  # per directory read
MAX_SUBDIRS = 200  # directories one level down that are looked into


# --- detection -------------------------------------------------------------------------------


def _ecosystem_of(name: str) -> Ecosystem | None:
    for ecosystem, patterns in MANIFESTS.items():
        if any(fnmatchcase(name, pattern) for pattern in patterns):
            return ecosystem
    return None


def _entries(directory: Path, limit: int) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return list(islice(it, limit))
    except OSError:
        return []


def detect_manifests(
    worktree: Path, *, max_entries: int = MAX_ENTRIES, max_subdirs: int = MAX_SUBDIRS
) -> dict[Ecosystem, str]:
    """Each used ecosystem and the first manifest that shows it (relative path, for the ``why``).

    Looks at the top level and one level down only (a monorepo's ``frontend/package.json``),
    reads at most ``max_entries`` names per directory and ``max_subdirs`` subdirectories (by
    name), follows no symlinked directory and skips hidden and dependency directories: a
    repository can make this neither slow nor leave its worktree."""
    found: dict[Ecosystem, str] = {}
    subdirs: list[str] = []
    for entry in sorted(_entries(worktree, max_entries), key=lambda e: e.name):
        ecosystem = _ecosystem_of(entry.name)
        if ecosystem is not None:
            found.setdefault(ecosystem, entry.name)
        elif (
            not entry.name.startswith(".")
            and entry.name not in _NOT_SCANNED
            and entry.is_dir(follow_symlinks=False)
        ):
            subdirs.append(entry.name)
    for subdir in sorted(subdirs)[:max_subdirs]:
        for entry in sorted(_entries(worktree / subdir, max_entries), key=lambda e: e.name):
            ecosystem = _ecosystem_of(entry.name)
            if ecosystem is not None:
                found.setdefault(ecosystem, f"{subdir}/{entry.name}")
    return found


def detect_ecosystems(worktree: Path) -> set[Ecosystem]:
    """The ecosystems whose manifests are in the worktree (see :func:`detect_manifests`)."""
    return set(detect_manifests(worktree))


# --- hosts -----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Endpoint:
    """A host and port a command may connect to; shown as ``host`` when the port is 443."""

    host: str
    port: int = 443

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 443 else f"{host}:{self.port}"


_SCHEMES = {"https": 443, "http": 80, "ssh": 22, "git": 9418}
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
#: Characters no URL authority has, and on which parsers disagree about the host (``a\\@b``).
_NOT_IN_NETLOC = re.compile(r"[\x00-\x20\\<>\"{}|^`\x7f]")


def _host_name(raw: str) -> str | None:
    host = raw.rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return host


def endpoint_of(url: str) -> Endpoint | None:
    """The host and port a registry URL connects to: never its userinfo, path or query.

    ``https://user:tok@pypi.corp.example/simple`` gives ``pypi.corp.example``; cargo's
    ``sparse+https://…`` and ``git+https://…`` count as https. None for anything else (a local
    path, ``file://``, a malformed URL)."""
    url = url.strip()
    for prefix in ("sparse+", "registry+", "git+"):
        url = url.removeprefix(prefix)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or not parts.hostname or _NOT_IN_NETLOC.search(parts.netloc):
        return None
    host = _host_name(parts.hostname)
    if host is None or port == 0:
        return None
    return Endpoint(host, port or _SCHEMES[scheme])


def _is_url(value: str) -> bool:
    """Whether a value is meant as a network URL (a local path or file:// needs no host)."""
    head = value.strip().split("://", 1)
    return len(head) == 2 and head[0].lower() != "file"


# --- the user's configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class UserRegistries:
    """What the user's own package-manager configuration names, per ecosystem."""

    #: ecosystem → endpoint → where the user named it ("PIP_INDEX_URL", "~/.npmrc registry")
    named: Mapping[Ecosystem, Mapping[Endpoint, tuple[str, ...]]]
    #: ecosystems whose default public registry the user replaced → where
    replaced: Mapping[Ecosystem, str]
    warnings: tuple[str, ...]
    #: every file looked for, present or not: whoever can write one of them chooses hosts, so
    #: the sandbox must never let a command write there (a cache bound read-write included)
    consulted: tuple[Path, ...]

    def hosts(self) -> dict[Ecosystem, tuple[str, ...]]:
        """Ecosystem → the named hosts as ``host`` or ``host:port``."""
        return {eco: tuple(str(e) for e in sorted(ends)) for eco, ends in self.named.items()}


@dataclass
class _Collector:
    home: Path
    env: Mapping[str, str]
    named: dict[Ecosystem, dict[Endpoint, list[str]]] = field(default_factory=dict)
    replaced: dict[Ecosystem, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    consulted: list[Path] = field(default_factory=list)

    def shown(self, path: Path) -> str:
        return f"~/{path.relative_to(self.home)}" if path.is_relative_to(self.home) else str(path)

    def add(self, ecosystem: Ecosystem, url: str, where: str, *, replaces: bool) -> None:
        """Record a URL the user named; the warning for a bad one never quotes it (it may hold
        a token)."""
        if not _is_url(url):
            return
        endpoint = endpoint_of(url)
        if endpoint is None:
            self.warnings.append(
                f"{where}: not a URL with a host name (http, https or ssh); ignored — fix the "
                "value, or add the host to your Locus config"
            )
            return
        self.named.setdefault(ecosystem, {}).setdefault(endpoint, []).append(where)
        if replaces:
            self.replace(ecosystem, where)

    def replace(self, ecosystem: Ecosystem, where: str) -> None:
        self.replaced.setdefault(ecosystem, where)

    def read(self, path: Path) -> str | None:
        """A config file's text; None when it is absent, or unreadable (with a warning)."""
        self.consulted.append(path)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.warn_file(path, f"cannot be read ({type(exc).__name__})")
            return None

    def warn_file(self, path: Path, problem: str) -> None:
        self.warnings.append(
            f"{self.shown(path)} {problem}; the registries it names are ignored — fix the file"
        )

    def ini(
        self, path: Path, *, delimiters: tuple[str, ...], bare_keys: bool = False
    ) -> list[tuple[str, str, str]]:
        """(section, key, value) of an ini-style file, parsed by the stdlib; keys before any
        section are in ``top``. Empty when the file is absent or malformed (with a warning)."""
        text = self.read(path)
        if text is None:
            return []
        parser = configparser.RawConfigParser(
            strict=False, delimiters=delimiters, allow_no_value=bare_keys
        )
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case
        try:
            parser.read_string(f"[top]\n{text}", source=str(path))
        except configparser.ParsingError as exc:
            lines = ", ".join(str(n - 1) for n, _ in exc.errors)  # the line text may hold a token
            self.warn_file(path, f"is not an ini file (line {lines})")
            return []
        except configparser.Error as exc:
            self.warn_file(path, f"is not an ini file ({type(exc).__name__})")
            return []
        return [
            (section, key, value)
            for section in parser.sections()
            for key, value in parser.items(section)
            if value
        ]

    def toml(self, path: Path) -> dict[str, object] | None:
        text = self.read(path)
        if text is None:
            return None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = _POSITION.search(str(exc))  # only the position: the message may quote a key
            self.warn_file(path, f"is not TOML ({where.group(0) if where else 'syntax'})")
            return None

    def config_dir(self) -> Path:
        xdg = self.env.get("XDG_CONFIG_HOME", "")
        return Path(xdg) if os.path.isabs(xdg) else self.home / ".config"

    def env_path(self, name: str) -> Path | None:
        value = self.env.get(name, "")
        return Path(value) if os.path.isabs(value) and value != os.devnull else None


_POSITION = re.compile(r"line \d+, column \d+")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _table(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


_PIP_ENV = (
    ("PIP_INDEX_URL", True),
    ("PIP_EXTRA_INDEX_URL", False),
    ("UV_INDEX_URL", True),
    ("UV_DEFAULT_INDEX", True),
    ("UV_EXTRA_INDEX_URL", False),
    ("UV_INDEX", False),
)


def _python(c: _Collector, system_root: Path) -> None:
    for name, replaces in _PIP_ENV:
        for value in c.env.get(name, "").split():
            # UV_INDEX entries may be named: "corp=https://…"
            label, sep, rest = value.partition("=")
            url = rest if sep and "/" not in label and ":" not in label else value
            c.add(Ecosystem.PYTHON, url, name, replaces=replaces)
    pip_files = [
        system_root / "etc/xdg/pip/pip.conf",
        system_root / "etc/pip.conf",
        c.home / ".pip/pip.conf",
        c.config_dir() / "pip/pip.conf",
    ]
    if (pip_file := c.env_path("PIP_CONFIG_FILE")) is not None:
        pip_files.append(pip_file)
    for path in pip_files:
        for _, key, value in c.ini(path, delimiters=("=", ":")):
            option = key.lower().replace("_", "-")
            if option in ("index-url", "extra-index-url"):
                for url in value.split():
                    where = f"{c.shown(path)} {option}"
                    c.add(Ecosystem.PYTHON, url, where, replaces=option == "index-url")
    uv_files = [system_root / "etc/uv/uv.toml", c.config_dir() / "uv/uv.toml"]
    if (uv_file := c.env_path("UV_CONFIG_FILE")) is not None:
        uv_files.append(uv_file)
    for path in uv_files:
        data = c.toml(path)
        if data is None:
            continue
        for table in (data, _table(data.get("pip"))):
            for option in ("index-url", "extra-index-url"):
                for url in _strings(table.get(option)):
                    where = f"{c.shown(path)} {option}"
                    c.add(Ecosystem.PYTHON, url, where, replaces=option == "index-url")
        indexes = data.get("index")
        for index in indexes if isinstance(indexes, list) else ():
            for url in _strings(_table(index).get("url")):
                default = _table(index).get("default") is True
                c.add(Ecosystem.PYTHON, url, f"{c.shown(path)} [[index]]", replaces=default)


_NPM_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _npm(c: _Collector, system_root: Path) -> None:
    lowered = {k.lower(): v for k, v in c.env.items()}
    for name in ("npm_config_registry", "yarn_registry", "yarn_npm_registry_server"):
        if lowered.get(name):
            c.add(Ecosystem.NPM, lowered[name], name.upper(), replaces=True)
    user = lowered.get("npm_config_userconfig", "")
    files = [
        *(system_root / p for p in ("etc/npmrc", "usr/etc/npmrc", "usr/local/etc/npmrc")),
        Path(user) if os.path.isabs(user) else c.home / ".npmrc",
    ]
    for path in files:
        for _, key, raw in c.ini(path, delimiters=("=",), bare_keys=True):
            scoped = key.startswith("@") and key.endswith(":registry")
            if key != "registry" and not scoped:
                continue
            where = f"{c.shown(path)} {key}"
            missing = [m for m in _NPM_VARIABLE.findall(raw) if m not in c.env]
            if missing:
                c.warnings.append(
                    f"{where}: names ${{{missing[0]}}}, which is not set; ignored — set it "
                    "or write the URL"
                )
                continue
            value = _NPM_VARIABLE.sub(lambda m: c.env[m.group(1)], raw).strip().strip("\"'")
            c.add(Ecosystem.NPM, value, where, replaces=not scoped)


def _cargo(c: _Collector) -> None:
    cargo_home = c.env_path("CARGO_HOME") or c.home / ".cargo"
    for name, value in c.env.items():
        if name.startswith("CARGO_REGISTRIES_") and name.endswith("_INDEX"):
            c.add(Ecosystem.CARGO, value, name, replaces=False)
    for path in (cargo_home / "config", cargo_home / "config.toml"):
        data = c.toml(path)
        if data is None:
            continue
        shown = c.shown(path)
        for name, registry in _table(data.get("registries")).items():
            for url in _strings(_table(registry).get("index")):
                c.add(Ecosystem.CARGO, url, f"{shown} [registries.{name}]", replaces=False)
        for url in _strings(_table(data.get("registry")).get("index")):
            c.add(Ecosystem.CARGO, url, f"{shown} [registry] index", replaces=True)
        for name, source in _table(data.get("source")).items():
            for key in ("registry", "git"):
                for url in _strings(_table(source).get(key)):
                    c.add(Ecosystem.CARGO, url, f"{shown} [source.{name}]", replaces=False)
        if _strings(_table(_table(data.get("source")).get("crates-io")).get("replace-with")):
            c.replace(Ecosystem.CARGO, f"{shown} [source.crates-io] replace-with")


def _go(c: _Collector) -> None:
    """``GOPROXY`` (minus ``direct``/``off``) and the checksum database; the environment wins
    over ``go env -w``'s file. ``GOPRIVATE``/``GONOSUMDB`` name modules, not servers: those are
    fetched ``direct`` from their VCS, which needs an explicit allow."""
    settings: dict[str, tuple[str, str]] = {}
    env_file = c.env.get("GOENV", "")
    if env_file != "off":
        path = Path(env_file) if os.path.isabs(env_file) else c.config_dir() / "go/env"
        for _, key, value in c.ini(path, delimiters=("=",)):
            settings[key] = (value, f"{c.shown(path)} {key}")
    for key in ("GOPROXY", "GOSUMDB"):
        if c.env.get(key):
            settings[key] = (c.env[key], key)
    if "GOPROXY" in settings:
        proxies, where = settings["GOPROXY"]
        c.replace(Ecosystem.GO, where)
        for entry in re.split(r"[,|]", proxies):
            entry = entry.strip()
            if entry not in ("direct", "off", ""):
                url = entry if "://" in entry else f"https://{entry}"  # as go reads it
                c.add(Ecosystem.GO, url, where, replaces=True)
    sumdb, where = settings.get("GOSUMDB", ("sum.golang.org", "the default GOSUMDB"))
    words = sumdb.split()
    if (Ecosystem.GO in c.replaced or "GOSUMDB" in settings) and words and words[0] != "off":
        url = words[1] if len(words) > 1 else f"https://{words[0].split('+', 1)[0]}"
        c.add(Ecosystem.GO, url, where, replaces=False)


_MAVEN_VARIABLE = re.compile(r"\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _replaces_central(mirror_of: str) -> bool:
    ids = [part.strip() for part in mirror_of.split(",")]
    if "!central" in ids:
        return False
    return any(i in ("*", "central", "external:*", "external:https:*") for i in ids)


def _maven(c: _Collector) -> None:
    files = [c.home / ".m2/settings.xml"]
    files += [p / "conf/settings.xml" for n in ("MAVEN_HOME", "M2_HOME") if (p := c.env_path(n))]
    for path in files:
        text = c.read(path)
        if text is None:
            continue
        try:
            root = SafeXML.fromstring(text)
        except (SafeXML.ParseError, DefusedXmlException) as exc:
            c.warn_file(path, f"is not safe XML ({type(exc).__name__})")
            continue
        for element in root.iter():
            kind = str(element.tag).rsplit("}", 1)[-1]
            if kind not in ("mirror", "repository", "pluginRepository"):
                continue
            children = {str(ch.tag).rsplit("}", 1)[-1]: (ch.text or "").strip() for ch in element}
            url = _MAVEN_VARIABLE.sub(lambda m: c.env.get(m.group(1), ""), children.get("url", ""))
            central = kind == "mirror" and _replaces_central(children.get("mirrorOf", ""))
            c.add(Ecosystem.MAVEN, url, f"{c.shown(path)} <{kind}>", replaces=central)


def user_registries(
    home: Path, env: Mapping[str, str], *, system_root: Path = Path("/")
) -> UserRegistries:
    """The registries the user's own pip/uv, npm/yarn, cargo, go and Maven configuration names.

    ``env`` is the user's environment (the daemon's), ``system_root`` where ``/etc`` is looked
    for. Every index a file names counts, even one a later file overrides: the user named it.
    Ecosystems not listed here (Gradle, RubyGems, Composer, NuGet) are not read: their
    registries come from the public list or the user's Locus config."""
    c = _Collector(home=home, env=env)
    _python(c, system_root)
    _npm(c, system_root)
    _cargo(c)
    _go(c)
    _maven(c)
    named = {eco: {e: tuple(w) for e, w in ends.items()} for eco, ends in c.named.items()}
    return UserRegistries(
        named=named,
        replaced=dict(c.replaced),
        warnings=tuple(c.warnings),
        consulted=tuple(dict.fromkeys(c.consulted)),
    )


# --- the allowlist ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowedHost:
    endpoint: Endpoint
    #: why it is allowed, for ``locus status`` and the review ("npm: public registry (…)")
    why: tuple[str, ...]

    @property
    def host(self) -> str:
        return str(self.endpoint)


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[AllowedHost, ...]
    ecosystems: frozenset[Ecosystem]
    warnings: tuple[str, ...]

    def hosts(self) -> tuple[str, ...]:
        return tuple(entry.host for entry in self.entries)

    def rules(self) -> list[Rule]:
        """The entries as the egress proxy's rules (exact host and port: ``evil.pypi.org`` is
        not ``pypi.org``), so there is one matcher, :class:`~locusd.agent.egress.rules.Rule`'s."""
        found = []
        for entry in self.entries:
            host = normalise_host(entry.endpoint.host)
            if host is not None:
                found.append(Rule(host, (entry.endpoint.port,), "; ".join(entry.why)))
        return found


def default_allowlist(
    worktree: Path, home: Path, env: Mapping[str, str], *, system_root: Path = Path("/")
) -> Allowlist:
    """Per ecosystem the worktree uses: the user's configured registries, plus the public ones
    unless the user replaced the default registry."""
    manifests = detect_manifests(worktree)
    user = user_registries(home, env, system_root=system_root)
    why: dict[Endpoint, list[str]] = {}
    for ecosystem in sorted(manifests):
        if ecosystem in user.replaced:
            public: Iterable[str] = ()
        else:
            public = PUBLIC_REGISTRIES[ecosystem]
        for host in public:
            reason = f"{ecosystem}: public registry ({manifests[ecosystem]} in the repository)"
            why.setdefault(Endpoint(host), []).append(reason)
        for endpoint, wheres in user.named.get(ecosystem, {}).items():
            for where in wheres:
                why.setdefault(endpoint, []).append(f"{ecosystem}: your {where}")
    entries = tuple(AllowedHost(e, tuple(dict.fromkeys(why[e]))) for e in sorted(why))
    return Allowlist(entries, frozenset(manifests), user.warnings)


# --- docs ------------------------------------------------------------------------------------


def _codes(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items)


def markdown_table() -> str:
    """The per-ecosystem table docs/agent.md shows (a test checks it is the same)."""
    rows: Iterator[str] = (
        f"| `{eco}` | {_codes(MANIFESTS[eco])} | {_codes(PUBLIC_REGISTRIES[eco])} |"
        for eco in Ecosystem
    )
    head = "| ecosystem | detected from | public registries (port 443) |\n| --- | --- | --- |"
    return "\n".join((head, *rows)) + "\n"
