"""Package caches per repository (locusd/agent/caches.py): through the real runner, real bwrap,
the real egress proxy and real pip and npm against loopback registries, a second run's install
in a new worktree fetches no package file again; another repository's caches are out of sight;
the user's own caches are neither used nor seen. And the cache directory itself: where it is,
what a command left in it, and the cap."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.agent.caches import CARGO, MAVEN, TOOLS, PackageCaches, for_run
from locusd.agent.report import RunReport, repo_key
from locusd.agent.sandbox import SHARED_SCRATCH, probe
from locusd.config import Config
from tests.locusd.agentkit import (
    anthropic,
    call,
    git,
    make_config,
    make_sample_repo,
    result_text,
    run,
    tool_results,
)
from tests.support.anthropic_server import AnthropicServer, Reply
from tests.support.npm_registry import NpmRegistry, tarball
from tests.support.programs import required
from tests.support.registry import Registry, wheel

pytestmark = pytest.mark.timeout(240)

PYTHON = Path(sys.executable).resolve()  # not a version manager's shim (see test_registry_run)
#: pip caches what it fetched over https, or from a host marked trusted: the stand-in is http.
PIP_SETUP = (
    f'setup = "{PYTHON} -m pip install --quiet --disable-pip-version-check'
    ' --trusted-host 127.0.0.1 --target vendor -r requirements.txt"\n'
)
NPM_SETUP = 'setup = "npm install --no-audit --no-fund --no-package-lock --loglevel=error"\n'


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's $HOME, with a pip and an npm cache of their own that must stay as they are."""
    home = tmp_path / "home"
    for own in (home / ".cache" / "pip", home / ".npm"):
        own.mkdir(parents=True)
        (own / "users-own").write_text("the user's cache\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def cache_dir() -> Iterator[Path]:
    """Locus's cache dir outside /tmp and outside the test's $HOME (both of which the sandbox
    replaces anyway): only the sandbox's hiding keeps it out of sight there."""
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()  # not the test's $HOME
    if any(real_home == Path(p) or Path(p) in real_home.parents for p in SHARED_SCRATCH):
        pytest.skip(f"{real_home} is under {SHARED_SCRATCH}: no visible place outside them")
    where = Path(tempfile.mkdtemp(prefix=".locus-test-caches-", dir=real_home))
    yield where
    shutil.rmtree(where, ignore_errors=True)


def config_for(tmp_path: Path, cache_dir: Path) -> Config:
    return make_config(tmp_path).model_copy(update={"cache_dir": cache_dir})


def python_repo(where: Path) -> Path:
    checkout = make_sample_repo(where)
    (checkout / "requirements.txt").write_text("locus-fixture-pkg==1.0\n")
    (checkout / ".gitignore").write_text("vendor/\n")
    (checkout / "check.py").write_text(
        "import sys\nsys.path.insert(0, 'vendor')\nimport locus_fixture_pkg\n"
        "assert locus_fixture_pkg.VALUE == 42\n"
    )
    (checkout / ".locus.toml").write_text(PIP_SETUP + f'verify = "{PYTHON} check.py"\n')
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "needs a wheel")
    return checkout


def npm_repo(where: Path) -> Path:
    checkout = make_sample_repo(where)
    (checkout / "package.json").write_text(
        '{"name": "app", "version": "1.0.0", "private": true,'
        ' "dependencies": {"locus-fixture-npm": "1.0.0"}}\n'
    )
    (checkout / ".gitignore").write_text("node_modules/\n")
    check = "process.exit(require('locus-fixture-npm').VALUE === 42 ? 0 : 1)"
    (checkout / ".locus.toml").write_text(NPM_SETUP + f'verify = "node -e \\"{check}\\""\n')
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "needs a package")
    return checkout


def leaving_a_change(*commands: str) -> list[Reply]:
    """Runs ``commands``, then leaves a new file: the run's worktree is kept for review, so the
    next run gets a new worktree (not a pooled one, whose ignored dirs are warm already)."""
    steps = [call("run_command", command=command) for command in commands]
    return [
        *steps,
        call("write_file", path="NOTES.md", content="looked around\n"),
        call("finish", summary="done"),
    ]


async def one_run(repo: Path, config: Config, script: list[Reply]) -> tuple[RunReport, str]:
    """A run; what its commands printed, as the model was told."""
    async with AnthropicServer(script) as model:
        report = await run(anthropic(model), repo, config)
        told = [result_text(b) for r in model.requests[1:] for b in tool_results(r)]
    assert report.verification is not None and report.verification.passed, report.verification
    return report, "\n".join(told)


async def test_a_second_pip_install_in_a_new_worktree_fetches_no_file(
    tmp_path: Path, home: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if probe().sandbox is None:
        pytest.fail("bwrap does not work here: this test is about the sandbox", pytrace=False)
    repo = python_repo(tmp_path)
    config = config_for(tmp_path, cache_dir)
    async with Registry(
        {"locus-fixture-pkg": wheel("locus-fixture-pkg", "1.0", "VALUE = 42\n")}
    ) as r:
        monkeypatch.setenv("PIP_INDEX_URL", r.index_url)
        first, _ = await one_run(repo, config, leaving_a_change())
        files_first = [p for p in r.served if p.startswith("/files/")]
        mine = cache_dir / "packages" / repo_key(repo)
        second, told = await one_run(
            repo, config, leaving_a_change("echo pip=$PIP_CACHE_DIR; ls -A ~/.cache/pip")
        )
    assert second.worktree != first.worktree  # a new worktree: its vendor/ was empty
    assert len(files_first) == 1 and [p for p in r.served if p.startswith("/files/")] == files_first
    assert f"pip={mine / 'pip'}" in told
    assert any((mine / "pip").rglob("*"))  # pip's cache is Locus's, per repository
    assert "users-own" not in told  # the user's own cache is not seen
    assert [p.name for p in (home / ".cache" / "pip").iterdir()] == ["users-own"]  # nor used


async def test_a_second_npm_install_in_a_new_worktree_fetches_no_tarball(
    tmp_path: Path, home: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    required("npm", "npm")
    repo = npm_repo(tmp_path)
    config = config_for(tmp_path, cache_dir)
    package = ("1.0.0", tarball("locus-fixture-npm", "1.0.0", "exports.VALUE = 42;\n"))
    async with NpmRegistry({"locus-fixture-npm": package}) as registry:
        monkeypatch.setenv("npm_config_registry", registry.url)
        first, _ = await one_run(repo, config, leaving_a_change())
        assert len(registry.tarballs_served()) == 1
        second, told = await one_run(repo, config, leaving_a_change("ls -A ~/.npm"))
    assert second.worktree != first.worktree
    assert len(registry.tarballs_served()) == 1  # the second install took it from the cache
    assert "users-own" not in told
    assert [p.name for p in (home / ".npm").iterdir()] == ["users-own"]


async def test_another_repository_s_caches_are_out_of_sight(
    tmp_path: Path, home: Path, cache_dir: Path
) -> None:
    if probe().sandbox is None:
        pytest.fail("bwrap does not work here: this test is about the sandbox", pytrace=False)
    other = make_sample_repo(tmp_path / "other")
    theirs = PackageCaches.of(cache_dir, other)
    theirs.prepare()
    (theirs.root / "pip" / "poison").write_text("their cache\n")
    repo = python_repo(tmp_path / "mine")
    mine = PackageCaches.of(cache_dir, repo)
    probes = [
        f"cat {theirs.root / 'pip' / 'poison'}",
        f"echo x > {theirs.root / 'pip' / 'planted'}",
        f"echo listing: $(ls -A {cache_dir / 'packages'})",
        f"echo mine > {mine.root / 'pip' / 'written'} && echo wrote-mine",
        # A link from its own cache into theirs, or into the user's: written through, inside.
        f"ln -s {theirs.root / 'pip'} {mine.root / 'pip' / 'theirs'}",
        f"echo x > {mine.root / 'pip' / 'theirs' / 'linked'}",
        f"ln -s {home / '.cache' / 'pip'} {mine.root / 'pip' / 'users'}",
        f"echo x > {mine.root / 'pip' / 'users' / 'linked'}",
    ]
    async with Registry(
        {"locus-fixture-pkg": wheel("locus-fixture-pkg", "1.0", "VALUE = 42\n")}
    ) as r:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIP_INDEX_URL", r.index_url)
            _, told = await one_run(
                repo, config_for(tmp_path, cache_dir), leaving_a_change(*probes)
            )
    assert "their cache" not in told
    assert not (theirs.root / "pip" / "planted").exists()
    assert not (theirs.root / "pip" / "linked").exists()
    assert [p.name for p in (home / ".cache" / "pip").iterdir()] == ["users-own"]
    (listing,) = [line for line in told.splitlines() if line.startswith("listing:")]
    assert listing.split() == ["listing:", mine.root.name]  # this repository's caches only
    assert "wrote-mine" in told and (mine.root / "pip" / "written").read_text() == "mine\n"


async def test_cargo_s_downloads_go_to_locus_s_cache_and_its_config_stays_read_only(
    tmp_path: Path, home: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~/.cargo`` is bound back read-only (its config and credentials); Locus's cargo cache
    is bound over ``~/.cargo/registry``: cargo can download, into this repository's cache."""
    monkeypatch.delenv("CARGO_HOME", raising=False)
    cargo = home / ".cargo"
    (cargo / "registry").mkdir(parents=True)
    (cargo / "config.toml").write_text("[net]\n")
    repo = python_repo(tmp_path)
    downloaded = "mkdir -p ~/.cargo/registry/cache && echo crate > ~/.cargo/registry/cache/c.crate"
    probes = [downloaded, "echo '[source]' >> ~/.cargo/config.toml"]
    async with Registry(
        {"locus-fixture-pkg": wheel("locus-fixture-pkg", "1.0", "VALUE = 42\n")}
    ) as r:
        monkeypatch.setenv("PIP_INDEX_URL", r.index_url)
        _, told = await one_run(repo, config_for(tmp_path, cache_dir), leaving_a_change(*probes))
        _, later = await one_run(
            repo,
            config_for(tmp_path, cache_dir),
            leaving_a_change("cat ~/.cargo/registry/cache/c.crate"),
        )
    mine = PackageCaches.of(cache_dir, repo)
    assert (mine.root / CARGO / "registry" / "cache" / "c.crate").read_text() == "crate\n"
    assert "crate" in later  # the next run finds it
    assert "Read-only file system" in told
    assert (cargo / "config.toml").read_text() == "[net]\n"
    assert list((cargo / "registry").iterdir()) == []  # the user's own cache: untouched


def test_each_repository_has_its_own_directory_per_tool(tmp_path: Path) -> None:
    one, two = (
        PackageCaches.of(tmp_path, tmp_path / "a"),
        PackageCaches.of(tmp_path, tmp_path / "b"),
    )
    assert one.root != two.root and one.root.parent == tmp_path / "packages"
    env = one.env()
    for tool, names in TOOLS.items():
        assert all(env[name] == str(one.root / tool) for name in names)
    assert env["MAVEN_OPTS"] == f"-Dmaven.repo.local={one.root / MAVEN}"
    assert "CARGO_HOME" not in env  # cargo's cache lives beside its config and credentials
    one.prepare()
    assert sorted(p.name for p in one.root.iterdir()) == sorted([*TOOLS, MAVEN, CARGO])
    assert (one.root.stat().st_mode & 0o777) == 0o700


def test_a_symlink_a_command_left_for_a_tool_is_replaced(tmp_path: Path) -> None:
    """A command made ``pip`` a link to the user's own cache: the next run's variables must
    not name it, and nothing is written or removed there."""
    users = tmp_path / "users-pip"
    users.mkdir()
    (users / "wheel").write_text("the user's\n")
    caches = PackageCaches.of(tmp_path / "cache", tmp_path / "repo")
    caches.prepare()
    (caches.root / "pip").rmdir()
    (caches.root / "pip").symlink_to(users)
    (caches.root / "npm").rmdir()
    (caches.root / "npm").write_text("a file\n")
    caches.prepare()
    assert (caches.root / "pip").is_dir() and not (caches.root / "pip").is_symlink()
    assert (caches.root / "npm").is_dir()
    assert [p.name for p in users.iterdir()] == ["wheel"]


def test_over_the_cap_the_largest_tools_are_emptied_first(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"x" * 100_000)
    caches = PackageCaches.of(tmp_path / "cache", tmp_path / "repo")
    caches.prepare()
    (caches.root / "npm" / "big").write_bytes(b"n" * 300_000)
    (caches.root / "pip" / "middle").write_bytes(b"p" * 200_000)
    (caches.root / "uv" / "small").write_bytes(b"u" * 20_000)
    (caches.root / "go-mod" / "link").symlink_to(outside)  # not followed, not counted
    readonly = caches.root / "go-mod" / "mod@v1"  # as Go leaves its module cache
    readonly.mkdir()
    (readonly / "go.mod").write_text("module m\n")
    readonly.chmod(0o555)
    capped = PackageCaches(caches.root, quota=400_000)
    assert capped.trim() is not None
    assert not (caches.root / "npm").exists() and (caches.root / "pip" / "middle").exists()
    assert (caches.root / "uv" / "small").exists()
    assert PackageCaches(caches.root, quota=250_000).trim() is not None
    assert not (caches.root / "pip").exists() and (caches.root / "uv" / "small").exists()
    assert PackageCaches(caches.root, quota=1, max_entries=1).trim() is not None
    assert not any(caches.root.iterdir())  # the read-only tree went too
    assert (outside / "keep").stat().st_size == 100_000  # the symlink's target did not
    assert capped.trim() is None  # under the cap: nothing to do


def test_caches_another_run_holds_are_not_trimmed(tmp_path: Path) -> None:
    """Runs of one repository at once: a run's start does not empty what another's install
    is reading; once that run ends, the next start trims."""
    running = PackageCaches.of(tmp_path / "cache", tmp_path / "repo")
    assert running.open() is None
    (running.root / "npm" / "in-use").write_bytes(b"n" * 300_000)
    starting = PackageCaches(running.root, quota=1)
    assert starting.open() is None
    assert (running.root / "npm" / "in-use").exists()
    starting.release()
    running.release()
    later = PackageCaches(running.root, quota=1)
    assert later.open() is not None
    assert not (running.root / "npm" / "in-use").exists()
    assert (running.root / "npm").is_dir()  # made again, empty
    later.release()


def test_caches_that_cannot_be_made_leave_a_warning_not_a_failure(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory\n")
    warnings: list[str] = []
    assert for_run(blocked, tmp_path / "repo", warnings) is None
    assert len(warnings) == 1 and "set cache_dir in your Locus config" in warnings[0]
