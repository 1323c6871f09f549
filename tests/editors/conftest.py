"""The VS Code extension built once per test session, for every module that runs it."""

from __future__ import annotations

import pytest

from tests.editors.vscodebuild import Built, build


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("vscode-build"))
