"""The default egress allowlist: ecosystems detected from manifests in a real worktree, the
user's own package-manager files and environment read for hosts (never credentials), and the
repository unable to add a host."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.egress.rules import EgressRules
from locusd.agent.registries import (
    MANIFESTS,
    PUBLIC_REGISTRIES,
    Ecosystem,
    Endpoint,
    default_allowlist,
    detect_ecosystems,
    detect_manifests,
    endpoint_of,
    markdown_table,
    user_registries,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "agent.md"
TOKEN = "s3cr3t-T0KEN"  # planted in URLs and files: must never come out


def made(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return made(tmp_path / "home")


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    return made(tmp_path / "worktree")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Stands for ``/``: where /etc/pip.conf and /etc/npmrc are looked for."""
    return made(tmp_path / "root")


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def hosts_of(home: Path, env: dict[str, str], root: Path) -> dict[Ecosystem, tuple[str, ...]]:
    return user_registries(home, env, system_root=root).hosts()


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ecosystem"),
    [
        (pattern.replace("*", "dev"), eco)
        for eco, patterns in MANIFESTS.items()
        for pattern in patterns
    ],
)
def test_each_manifest_shows_its_ecosystem(worktree: Path, name: str, ecosystem: Ecosystem) -> None:
    write(worktree / name)
    assert detect_ecosystems(worktree) == {ecosystem}


def test_one_level_down_counts_two_levels_do_not(worktree: Path) -> None:
    write(worktree / "frontend" / "package.json", "{}")
    write(worktree / "services" / "api" / "go.mod")
    write(worktree / "Cargo.toml")
    assert detect_manifests(worktree) == {
        Ecosystem.NPM: "frontend/package.json",
        Ecosystem.CARGO: "Cargo.toml",
    }


def test_hidden_dependency_and_symlinked_dirs_are_not_looked_into(
    worktree: Path, tmp_path: Path
) -> None:
    write(worktree / ".github" / "package.json")
    write(worktree / "node_modules" / "pyproject.toml")
    write(worktree / "vendor" / "Gemfile")
    elsewhere = write(tmp_path / "elsewhere" / "go.mod").parent
    (worktree / "link").symlink_to(elsewhere)
    assert detect_ecosystems(worktree) == set()


def test_scanning_is_bounded(worktree: Path) -> None:
    for i in range(5):
        (worktree / f"d{i}").mkdir()
    write(worktree / "d4" / "pom.xml")
    assert detect_ecosystems(worktree) == {Ecosystem.MAVEN}
    assert detect_manifests(worktree, max_subdirs=4) == {}  # d4 is the fifth by name
    write(worktree / "d0" / "go.mod")
    write(worktree / "d0" / "Cargo.toml")
    assert len(detect_manifests(worktree / "d0")) == 2
    assert len(detect_manifests(worktree / "d0", max_entries=1)) == 1


def test_a_missing_worktree_uses_nothing(tmp_path: Path) -> None:
    assert detect_ecosystems(tmp_path / "gone") == set()


# --- hosts out of URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://user:{TOKEN}@pypi.corp.example/simple", Endpoint("pypi.corp.example")),
        ("https://PyPI.Corp.Example./simple/", Endpoint("pypi.corp.example")),
        ("http://mirror.example/simple", Endpoint("mirror.example", 80)),
        ("https://nexus.example:8443/repository/npm/", Endpoint("nexus.example", 8443)),
        ("sparse+https://cargo.corp.example/index/", Endpoint("cargo.corp.example")),
        ("git+https://git.corp.example/index.git", Endpoint("git.corp.example")),
        ("ssh://git@git.corp.example/index.git", Endpoint("git.corp.example", 22)),
        ("http://127.0.0.1:3141/root/pypi", Endpoint("127.0.0.1", 3141)),
        ("http://[::1]:4873/", Endpoint("::1", 4873)),
        ("https://bücher.example/", Endpoint("xn--bcher-kva.example")),
        ("/srv/wheels", None),
        ("file:///srv/wheels", None),
        ("ftp://files.example/", None),
        ("https://bad_host.example/", None),
        ("https://host.example:99999/", None),
        ("https://host.example:0/", None),
        ("https://evil.example\\@good.example/", None),  # parsers disagree on the host: refuse
        ("https:///path-only", None),
        ("not a url", None),
    ],
)
def test_endpoint_of(url: str, expected: Endpoint | None) -> None:
    assert endpoint_of(url) == expected


def test_endpoints_show_the_port_only_when_it_is_not_443() -> None:
    assert str(Endpoint("pypi.org")) == "pypi.org"
    assert str(Endpoint("mirror.example", 80)) == "mirror.example:80"
    assert str(Endpoint("::1", 4873)) == "[::1]:4873"


_LABELS = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
_HOSTS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join).filter(lambda h: not h.isdigit())


@given(
    scheme=st.sampled_from(["http", "https", "sparse+https", "git+https", "ssh"]),
    user=st.text(min_size=1),
    password=st.text(),
    host=_HOSTS,
    port=st.none() | st.integers(1, 65535),
    path=st.text(),
)
def test_the_host_never_carries_userinfo(
    scheme: str, user: str, password: str, host: str, port: int | None, path: str
) -> None:
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{userinfo}@{host}" + (f":{port}" if port else "")
    found = endpoint_of(f"{scheme}://{netloc}/{quote(path)}")
    assert found is not None
    assert found.host == host  # so nothing of the user, the password or the path
    assert found.port == port or (port is None and found.port in (80, 443, 22))


_SHAPE = re.compile(r"[a-z0-9.-]+(:\d+)?|\[[0-9a-f:.]+\](:\d+)?")


@given(st.text() | st.builds(lambda t: f"https://{t}", st.text()))
def test_whatever_the_text_a_host_is_a_plain_name(text: str) -> None:
    found = endpoint_of(text)
    assert found is None or _SHAPE.fullmatch(str(found))


# --- the user's own configuration --------------------------------------------------------------


def test_nothing_configured_names_nothing(home: Path, root: Path) -> None:
    registries = user_registries(home, {}, system_root=root)
    assert registries.hosts() == {}
    assert registries.replaced == {}
    assert registries.warnings == ()


def test_pip_and_uv_environment(home: Path, root: Path) -> None:
    env = {
        "PIP_INDEX_URL": f"https://ci:{TOKEN}@pypi.corp.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://extra1.example/simple https://extra2.example/simple",
        "UV_DEFAULT_INDEX": "https://uv.corp.example/simple",
        "UV_INDEX": "torch=https://download.torch.example/whl https://plain.example/simple",
        "UV_EXTRA_INDEX_URL": "/local/wheels",
    }
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts() == {
        Ecosystem.PYTHON: (
            "download.torch.example",
            "extra1.example",
            "extra2.example",
            "plain.example",
            "pypi.corp.example",
            "uv.corp.example",
        )
    }
    assert registries.replaced == {Ecosystem.PYTHON: "PIP_INDEX_URL"}
    assert registries.warnings == ()


@pytest.mark.parametrize(
    "where",
    [
        "root:etc/pip.conf",
        "root:etc/xdg/pip/pip.conf",
        "home:.pip/pip.conf",
        "home:.config/pip/pip.conf",
        "xdg:pip/pip.conf",
        "env:PIP_CONFIG_FILE",
    ],
)
def test_pip_config_files(home: Path, root: Path, tmp_path: Path, where: str) -> None:
    base, _, rel = where.partition(":")
    env: dict[str, str] = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    if base == "env":
        path = tmp_path / "custom.conf"
        env[rel] = str(path)
    else:
        path = {"root": root, "home": home, "xdg": tmp_path / "xdg"}[base] / rel
    if base == "home" and rel.startswith(".config"):
        env = {}
    write(
        path,
        "[global]\n"
        f"index-url = https://me:{TOKEN}@pypi.corp.example/simple\n"
        "[install]\n"
        "extra_index_url =\n    https://one.example/simple\n    https://two.example:8080/simple\n",
    )
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts() == {
        Ecosystem.PYTHON: ("one.example", "pypi.corp.example", "two.example:8080")
    }
    assert registries.replaced[Ecosystem.PYTHON].endswith("index-url")
    where_named = registries.named[Ecosystem.PYTHON][Endpoint("one.example")]
    assert where_named == (f"{'~/' + rel if base == 'home' else path} extra-index-url",)


def test_an_extra_index_alone_keeps_pypi(home: Path, root: Path) -> None:
    write(home / ".config/pip/pip.conf", "[global]\nextra-index-url = https://extra.example/s\n")
    assert user_registries(home, {}, system_root=root).replaced == {}


def test_uv_toml(home: Path, root: Path) -> None:
    write(
        home / ".config/uv/uv.toml",
        'extra-index-url = ["https://extra.example/simple"]\n'
        "[pip]\n"
        'index-url = "https://pip-section.example/simple"\n'
        "[[index]]\n"
        'name = "corp"\nurl = "https://corp.example/simple"\ndefault = true\n'
        "[[index]]\n"
        'url = "https://another.example/simple"\n',
    )
    registries = user_registries(home, {}, system_root=root)
    assert registries.hosts()[Ecosystem.PYTHON] == (
        "another.example",
        "corp.example",
        "extra.example",
        "pip-section.example",
    )
    assert Ecosystem.PYTHON in registries.replaced


def test_npmrc(home: Path, root: Path) -> None:
    write(
        home / ".npmrc",
        "; comment\n"
        "registry=https://npm.corp.example/\n"
        "@corp:registry = https://scoped.example/npm/\n"
        f"//npm.corp.example/:_authToken={TOKEN}\n"
        "always-auth=true\n"
        "strict-ssl\n",
    )
    write(root / "etc/npmrc", 'registry="${NPM_MIRROR}"\n')
    registries = user_registries(home, {"NPM_MIRROR": "https://etc.example/"}, system_root=root)
    assert registries.hosts() == {
        Ecosystem.NPM: ("etc.example", "npm.corp.example", "scoped.example")
    }
    assert registries.replaced == {Ecosystem.NPM: f"{root}/etc/npmrc registry"}
    assert registries.warnings == ()


def test_a_scoped_registry_alone_keeps_the_public_one(home: Path, root: Path) -> None:
    write(home / ".npmrc", "@corp:registry=https://scoped.example/\n")
    assert user_registries(home, {}, system_root=root).replaced == {}


def test_npm_environment_and_userconfig(home: Path, root: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere.npmrc", "registry=https://userconfig.example/\n")
    write(home / ".npmrc", "registry=https://not-read.example/\n")
    env = {"npm_config_registry": "https://env.example/", "NPM_CONFIG_USERCONFIG": str(other)}
    assert hosts_of(home, env, root) == {Ecosystem.NPM: ("env.example", "userconfig.example")}


def test_an_npmrc_variable_that_is_not_set_is_a_warning(home: Path, root: Path) -> None:
    write(home / ".npmrc", "registry=${MISSING}\n")
    registries = user_registries(home, {}, system_root=root)
    assert registries.hosts() == {}
    assert registries.warnings == (
        "~/.npmrc registry: names ${MISSING}, which is not set; ignored — set it or write the URL",
    )


def test_cargo_config(home: Path, root: Path) -> None:
    write(
        home / ".cargo/config.toml",
        "[registries.corp]\n"
        'index = "sparse+https://cargo.corp.example/index/"\n'
        "[source.crates-io]\n"
        'replace-with = "mirror"\n'
        "[source.mirror]\n"
        'registry = "sparse+https://mirror.example/crates/"\n'
        "[source.vendored]\n"
        'directory = "vendor"\n',
    )
    env = {"CARGO_REGISTRIES_OTHER_INDEX": "https://other.example/index"}
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts() == {
        Ecosystem.CARGO: ("cargo.corp.example", "mirror.example", "other.example")
    }
    assert registries.replaced == {
        Ecosystem.CARGO: "~/.cargo/config.toml [source.crates-io] replace-with"
    }


def test_cargo_home_and_an_added_registry_only(home: Path, root: Path, tmp_path: Path) -> None:
    cargo_home = tmp_path / "cargo"
    write(cargo_home / "config", '[registries.corp]\nindex = "https://corp.example/git/index"\n')
    registries = user_registries(home, {"CARGO_HOME": str(cargo_home)}, system_root=root)
    assert registries.hosts() == {Ecosystem.CARGO: ("corp.example",)}
    assert registries.replaced == {}


@pytest.mark.parametrize(
    ("env", "hosts"),
    [
        ({}, None),
        (
            {"GOPROXY": "https://goproxy.corp.example,direct"},
            ("goproxy.corp.example", "sum.golang.org"),
        ),
        (
            {"GOPROXY": "https://a.example|https://b.example:8443", "GOSUMDB": "off"},
            ("a.example", "b.example:8443"),
        ),
        ({"GOPROXY": "off"}, ("sum.golang.org",)),
        (
            {"GOPROXY": "goproxy.io", "GOSUMDB": "sum.golang.google.cn"},
            ("goproxy.io", "sum.golang.google.cn"),
        ),
        (
            {"GOPROXY": "file:///srv/mods", "GOSUMDB": "sum.golang.org https://sumproxy.example"},
            ("sumproxy.example",),
        ),
        ({"GOSUMDB": "gosum.example+ce6e7565+AY5qEHUk"}, ("gosum.example",)),
    ],
)
def test_go_environment(
    home: Path, root: Path, env: dict[str, str], hosts: tuple[str, ...] | None
) -> None:
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts().get(Ecosystem.GO) == hosts
    assert (Ecosystem.GO in registries.replaced) == ("GOPROXY" in env)


def test_go_env_file_and_the_environment_beating_it(home: Path, root: Path) -> None:
    write(home / ".config/go/env", "GOPROXY=https://file.example\nGOPRIVATE=*.corp.example\n")
    assert hosts_of(home, {}, root)[Ecosystem.GO] == ("file.example", "sum.golang.org")
    env = {"GOPROXY": "https://env.example"}
    assert hosts_of(home, env, root)[Ecosystem.GO] == ("env.example", "sum.golang.org")
    assert hosts_of(home, {"GOENV": "off"}, root) == {}


MAVEN_SETTINGS = """<?xml version="1.0"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.2.0">
  <servers><server><id>corp</id><password>{token}</password></server></servers>
  <mirrors>
    <mirror><id>corp</id><mirrorOf>{mirror_of}</mirrorOf>
      <url>https://deploy:{token}@nexus.corp.example/repository/maven-public/</url></mirror>
  </mirrors>
  <profiles><profile><id>extra</id>
    <repositories><repository><id>x</id><url>${{env.REPO_URL}}</url></repository></repositories>
    <pluginRepositories><pluginRepository><id>p</id>
      <url>https://plugins.corp.example/m2</url></pluginRepository></pluginRepositories>
  </profile></profiles>
</settings>
"""


@pytest.mark.parametrize(
    ("mirror_of", "replaces"),
    [
        ("*", True),
        ("central", True),
        ("external:*,!snapshots", True),
        ("*,!central", False),
        ("corp-only", False),
    ],
)
def test_maven_settings(home: Path, root: Path, mirror_of: str, replaces: bool) -> None:
    write(home / ".m2/settings.xml", MAVEN_SETTINGS.format(token=TOKEN, mirror_of=mirror_of))
    registries = user_registries(home, {"REPO_URL": "https://repo.example/m2"}, system_root=root)
    assert registries.hosts() == {
        Ecosystem.MAVEN: ("nexus.corp.example", "plugins.corp.example", "repo.example")
    }
    assert (Ecosystem.MAVEN in registries.replaced) == replaces


def test_it_says_which_files_it_consulted(home: Path, root: Path, tmp_path: Path) -> None:
    """The sandbox keeps these out of a command's reach (a writable one would let a run widen
    the next run's allowlist): every file read for hosts is in the list, and only those."""
    env = {"CARGO_HOME": str(tmp_path / "cargo"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    consulted = set(user_registries(home, env, system_root=root).consulted)
    assert consulted == {
        root / "etc/xdg/pip/pip.conf",
        root / "etc/pip.conf",
        home / ".pip/pip.conf",
        tmp_path / "xdg/pip/pip.conf",
        root / "etc/uv/uv.toml",
        tmp_path / "xdg/uv/uv.toml",
        root / "etc/npmrc",
        root / "usr/etc/npmrc",
        root / "usr/local/etc/npmrc",
        home / ".npmrc",
        tmp_path / "cargo/config",
        tmp_path / "cargo/config.toml",
        tmp_path / "xdg/go/env",
        home / ".m2/settings.xml",
    }


# --- malformed files and credentials -----------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<settings><mirrors><mirror><url>&lol2;</url></mirror></mirrors></settings>
"""


def plant_malformed(home: Path) -> None:
    write(home / ".config/pip/pip.conf", f"=https://x:{TOKEN}@a.example\n")
    write(home / ".config/uv/uv.toml", f'index-url = "https://{TOKEN}@a.example\n')
    (home / ".npmrc").write_bytes(b"registry=\xff\xfe" + TOKEN.encode())
    write(home / ".cargo/config.toml", f'[registries.x]\nindex = "{TOKEN}" = 1\n')
    write(home / ".cargo/config", f"[registries.x]\nindex = 3\n[source]\n{TOKEN} = 4\n")
    write(home / ".m2/settings.xml", BILLION_LAUGHS)
    (home / ".pip").mkdir()
    (home / ".pip/pip.conf").mkdir()  # a directory where a file is expected


def test_malformed_files_are_warnings_that_quote_nothing(home: Path, root: Path) -> None:
    plant_malformed(home)
    env = {"PIP_INDEX_URL": f"https://u:{TOKEN}@bad_host.example/", "GOPROXY": f"{TOKEN}@@,direct"}
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts() == {Ecosystem.GO: ("sum.golang.org",)}  # GOPROXY is still set
    text = "\n".join(registries.warnings)
    assert TOKEN not in text
    for name in ("pip/pip.conf", "uv/uv.toml", ".npmrc", "config.toml", "settings.xml"):
        assert name in text
    assert "PIP_INDEX_URL: not a URL with a host name" in text
    assert "GOPROXY: not a URL with a host name" in text
    assert "~/.m2/settings.xml is not safe XML (EntitiesForbidden)" in text
    assert "~/.config/pip/pip.conf is not an ini file (line 1)" in text


def test_a_bad_file_does_not_hide_a_good_one(home: Path, root: Path) -> None:
    write(root / "etc/pip.conf", "[global]\n= https://no-key.example\n")
    write(home / ".config/pip/pip.conf", "[global]\nindex-url = https://good.example/simple\n")
    registries = user_registries(home, {}, system_root=root)
    assert registries.hosts() == {Ecosystem.PYTHON: ("good.example",)}
    assert len(registries.warnings) == 1


# --- the allowlist -----------------------------------------------------------------------------


def test_public_registries_of_the_detected_ecosystems(
    worktree: Path, home: Path, root: Path
) -> None:
    write(worktree / "package.json", "{}")
    write(worktree / "backend" / "requirements-dev.txt")
    allowlist = default_allowlist(worktree, home, {}, system_root=root)
    assert allowlist.ecosystems == {Ecosystem.NPM, Ecosystem.PYTHON}
    assert set(allowlist.hosts()) == {
        *PUBLIC_REGISTRIES[Ecosystem.NPM],
        *PUBLIC_REGISTRIES[Ecosystem.PYTHON],
    }
    why = {entry.host: entry.why for entry in allowlist.entries}
    assert why["pypi.org"] == (
        "python: public registry (backend/requirements-dev.txt in the repository)",
    )
    rules = EgressRules(allowlist.rules())  # as the egress proxy matches them
    assert rules.judge("registry.npmjs.org", 443).allowed
    assert rules.judge("PyPI.org.", 443).allowed
    assert not rules.judge("pypi.org", 80).allowed
    assert not rules.judge("evil.pypi.org", 443).allowed
    assert not rules.judge("crates.io", 443).allowed  # no Cargo.toml
    assert not rules.judge("github.com", 443).allowed


def test_a_host_two_ecosystems_need_says_both(worktree: Path, home: Path, root: Path) -> None:
    write(worktree / "pom.xml")
    write(worktree / "build.gradle.kts")
    allowlist = default_allowlist(worktree, home, {}, system_root=root)
    why = {entry.host: entry.why for entry in allowlist.entries}
    assert why["repo.maven.apache.org"] == (
        "gradle: public registry (build.gradle.kts in the repository)",
        "maven: public registry (pom.xml in the repository)",
    )


def test_a_replaced_registry_is_not_allowed_an_added_one_is(
    worktree: Path, home: Path, root: Path
) -> None:
    write(worktree / "pyproject.toml")
    write(worktree / "package.json")
    write(worktree / "go.mod")
    write(home / ".npmrc", "@corp:registry=https://npm.corp.example/\n")
    env = {
        "PIP_INDEX_URL": f"https://u:{TOKEN}@devpi.example:3141/root/pypi/+simple/",
        "GOPROXY": "off",
        "GOSUMDB": "off",
        "CARGO_REGISTRIES_CORP_INDEX": "https://cargo.corp.example/index",  # no Cargo.toml
    }
    allowlist = default_allowlist(worktree, home, env, system_root=root)
    assert allowlist.hosts() == (
        "devpi.example:3141",
        "npm.corp.example",
        "registry.npmjs.org",
        "registry.yarnpkg.com",
    )
    why = {entry.host: entry.why for entry in allowlist.entries}
    assert why["devpi.example:3141"] == ("python: your PIP_INDEX_URL",)
    assert why["npm.corp.example"] == ("npm: your ~/.npmrc @corp:registry",)
    assert TOKEN not in repr(allowlist)


# --- the repository cannot widen it ------------------------------------------------------------

EVIL = "evil.example"
REPO_FILES = {
    ".npmrc": f"registry=https://{EVIL}/\n@x:registry=https://{EVIL}/\n",
    ".yarnrc": f'registry "https://{EVIL}/"\n',
    ".yarnrc.yml": f'npmRegistryServer: "https://{EVIL}"\n',
    "pip.conf": f"[global]\nindex-url = https://{EVIL}/simple\n",
    "pip.ini": f"[global]\nindex-url = https://{EVIL}/simple\n",
    ".pip/pip.conf": f"[global]\nextra-index-url = https://{EVIL}/simple\n",
    ".config/pip/pip.conf": f"[global]\nextra-index-url = https://{EVIL}/simple\n",
    "uv.toml": f'index-url = "https://{EVIL}/simple"\n',
    "pyproject.toml": (
        f'[tool.uv]\nindex-url = "https://{EVIL}/simple"\n'
        f'[[tool.uv.index]]\nurl = "https://{EVIL}/s"\ndefault = true\n'
        f'[[tool.poetry.source]]\nname = "x"\nurl = "https://{EVIL}/s"\n'
    ),
    "Pipfile": f'[[source]]\nurl = "https://{EVIL}/simple"\nname = "x"\n',
    "requirements.txt": f"--index-url https://{EVIL}/simple\n--extra-index-url https://{EVIL}/\n",
    ".cargo/config.toml": (
        f'[source.crates-io]\nreplace-with = "x"\n[source.x]\nregistry = "https://{EVIL}/"\n'
        f'[registries.y]\nindex = "sparse+https://{EVIL}/"\n'
    ),
    "Cargo.toml": f'[package]\nname = "x"\n[dependencies]\ny = {{ git = "https://{EVIL}/y" }}\n',
    "go.env": f"GOPROXY=https://{EVIL}\n",
    ".config/go/env": f"GOPROXY=https://{EVIL}\n",
    "go.mod": f"module x\n// GOPROXY=https://{EVIL}\nreplace y => {EVIL}/y v1.0.0\n",
    "settings.xml": MAVEN_SETTINGS.format(token="t", mirror_of="*").replace(
        "nexus.corp.example", EVIL
    ),
    ".mvn/settings.xml": MAVEN_SETTINGS.format(token="t", mirror_of="*").replace(
        "nexus.corp.example", EVIL
    ),
    ".m2/settings.xml": MAVEN_SETTINGS.format(token="t", mirror_of="*").replace(
        "nexus.corp.example", EVIL
    ),
    "pom.xml": f"<project><repositories><repository><url>https://{EVIL}/</url></repository></repositories></project>",
    "build.gradle": f"repositories {{ maven {{ url 'https://{EVIL}/' }} }}\n",
    "Gemfile": f'source "https://{EVIL}"\n',
    "composer.json": f'{{"repositories": [{{"type": "composer", "url": "https://{EVIL}"}}]}}',
    "nuget.config": f'<configuration><packageSources><add key="x" value="https://{EVIL}/v3/index.json"/></packageSources></configuration>',
    "package.json": f'{{"publishConfig": {{"registry": "https://{EVIL}/"}}}}',
    ".locus.toml": f'[agent]\nallow_hosts = ["{EVIL}"]\nallow_network = true\n[network]\nallow = ["{EVIL}"]\n',
}


def test_hosts_written_in_the_repository_add_nothing(
    worktree: Path, home: Path, root: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    for name, text in REPO_FILES.items():
        write(worktree / name, text)
        if detect_ecosystems(write(tmp_path / "probe" / name).parent):
            write(bare / name)  # the same manifest, empty
        (tmp_path / "probe" / name).unlink()
    write(home / ".npmrc", "@corp:registry=https://npm.corp.example/\n")  # the user's own
    with_files = default_allowlist(worktree, home, {}, system_root=root)
    without = default_allowlist(bare, home, {}, system_root=root)
    assert with_files == without
    assert not any(EVIL in host for host in with_files.hosts())
    assert "npm.corp.example" in with_files.hosts()
    assert with_files.ecosystems == set(Ecosystem) - {Ecosystem.NUGET}


def test_relative_paths_in_the_environment_are_not_followed_into_the_worktree(
    worktree: Path, home: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path would be read against the daemon's working directory, which may be the
    worktree: only absolute ones count."""
    for name, text in REPO_FILES.items():
        write(worktree / name, text)
    write(worktree / "cargo/config.toml", REPO_FILES[".cargo/config.toml"])
    write(worktree / "maven/conf/settings.xml", REPO_FILES["settings.xml"])
    monkeypatch.chdir(worktree)
    env = {
        "PIP_CONFIG_FILE": "pip.conf",
        "UV_CONFIG_FILE": "uv.toml",
        "XDG_CONFIG_HOME": ".config",
        "NPM_CONFIG_USERCONFIG": ".npmrc",
        "CARGO_HOME": "cargo",
        "GOENV": "go.env",
        "MAVEN_HOME": "maven",
    }
    registries = user_registries(home, env, system_root=root)
    assert registries.hosts() == {}
    assert not any(path.is_relative_to(worktree) for path in registries.consulted)


# --- docs --------------------------------------------------------------------------------------


def test_the_table_in_docs_is_the_one_the_code_uses() -> None:
    text = DOC.read_text(encoding="utf-8")
    marker = "<!-- registries: generated by markdown_table() in locusd/agent/registries.py"
    assert marker in text
    after = text.split(marker, 1)[1].split("\n", 1)[1]
    table = after.split("\n\n", 1)[0] + "\n"
    assert table == markdown_table(), "paste markdown_table()'s output into docs/agent.md"


def test_the_table_lists_every_ecosystem_and_host() -> None:
    table = markdown_table()
    for ecosystem, hosts in PUBLIC_REGISTRIES.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{ecosystem}` |"))
        assert all(f"`{host}`" in row for host in hosts)
    assert set(PUBLIC_REGISTRIES) == set(Ecosystem) == set(MANIFESTS)


def test_no_git_host_is_a_default() -> None:
    every = {host for hosts in PUBLIC_REGISTRIES.values() for host in hosts}
    for host in ("github.com", "codeload.github.com", "gitlab.com", "bitbucket.org"):
        assert host not in every
    assert all(endpoint_of(f"https://{host}/") == Endpoint(host) for host in every)
