"""What the VS Code extension's tests share: the extension built once per session, and a
user's machine (XDG dirs in tmp, a short socket dir, a sample checkout) whose daemon is stopped
after the test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.editors.vscodebuild import Built, build
from tests.locusd.agentkit import make_sample_repo
from tests.locusd.cliuser import LOCUS, machine_env
from tests.support.shortpath import short_tmp


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("vscode-build"))


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    with short_tmp() as runtime:
        runtime.chmod(0o700)
        env = machine_env(tmp_path, runtime)
        repo = make_sample_repo(tmp_path)
        for key, value in (("user.name", "Ada Lovelace"), ("user.email", "ada@example.com")):
            subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
        try:
            yield env, repo
        finally:
            subprocess.run([LOCUS, "daemon", "stop"], env=env, capture_output=True, timeout=60)
