"""With default settings, a run on a repository whose tests need a package from the user's
(loopback) registry goes green inside the sandbox: the repository's setup installs it with real
pip through the egress proxy — the registry allowed because the user's ``PIP_INDEX_URL`` names
it, the token in that URL kept from the command — and the report and transcript show the
connections, including the refused ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from locusd.agent.transcript import EgressRecord, read
from tests.locusd.agentkit import anthropic, call, git, make_config, make_sample_repo, run
from tests.support.anthropic_server import AnthropicServer
from tests.support.registry import Registry, wheel

pytestmark = pytest.mark.timeout(180)

TOKEN = "registry-token-c0ffee"  # in the user's index URL: must not reach the agent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    checkout = make_sample_repo(tmp_path)
    (checkout / "requirements.txt").write_text("locus-fixture-pkg==1.0\n")
    (checkout / "test_vendored.py").write_text(
        "import sys, unittest\nsys.path.insert(0, 'vendor')\nimport locus_fixture_pkg\n\n\n"
        "class Vendored(unittest.TestCase):\n"
        "    def test_the_package_from_the_registry(self):\n"
        "        self.assertEqual(locus_fixture_pkg.VALUE, 42)\n"
    )
    # The interpreter itself, not a version manager's shim (pyenv's rehashes after an
    # install, in a directory the sandbox keeps read-only).
    python = Path(sys.executable).resolve()
    (checkout / ".gitignore").write_text("vendor/\n")
    (checkout / ".locus.toml").write_text(
        f'setup = "{python} -m pip install --quiet --no-cache-dir --disable-pip-version-check'
        ' --target vendor -r requirements.txt"\n'
        f'verify = "{python} -m unittest -q test_vendored"\n'
    )
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=D", "-c", "user.email=d@l", "commit", "-qm", "needs a package")
    return checkout


async def test_setup_installs_from_the_user_s_registry_and_the_run_goes_green(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no pip.conf of the machine's: the variable decides
    package = wheel("locus-fixture-pkg", "1.0", "VALUE = 42\n")
    async with Registry({"locus-fixture-pkg": package}) as registry:
        index = registry.index_url.replace("http://", f"http://deploy:{TOKEN}@")
        monkeypatch.setenv("PIP_INDEX_URL", index)
        script = [
            call("run_command", command="echo index=$PIP_INDEX_URL"),
            call("finish", summary="nothing to change: the package is installed"),
        ]
        async with AnthropicServer(script) as model:
            report = await run(anthropic(model), repo, make_config(tmp_path))
            sent = [r.body for r in model.requests]
    assert report.verification is not None and report.verification.passed, report.verification
    assert report.outcome in ("completed", "unverified"), report.reason
    assert any(path.startswith("/files/") for path in registry.served)  # pip fetched the wheel
    assert TOKEN not in str(sent)  # the command saw the index URL without its token
    assert f"index={registry.index_url}" in str(sent)
    (used,) = [u for u in report.network if u.port == registry.port]
    assert used.allowed and used.host == "127.0.0.1" and used.received > len(package[1])
    records = [r for r in read(Path(report.transcript)) if isinstance(r, EgressRecord)]
    assert any(r.allowed and r.port == registry.port for r in records)  # setup's, kept
