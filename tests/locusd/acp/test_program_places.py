"""Where an external agent's program is seen inside the sandbox (``with_program``): a program the
user keeps in ``/tmp`` or in a tmpfs ``$HOME`` is bound back read-only — its virtualenv or
``node_modules`` whole — but never a scratch place's root (other programs' sockets live there)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from locusd.agent.external.session import with_program
from locusd.agent.sandbox import Sandbox

BOX = Sandbox(bwrap="bwrap", network=False)


@pytest.fixture
def in_tmp() -> Iterator[Path]:
    """A folder in /tmp itself, whatever $TMPDIR says."""
    where = Path(tempfile.mkdtemp(dir="/tmp"))
    yield where
    shutil.rmtree(where)


def test_a_virtualenv_and_a_script_in_tmp_are_bound_back_after_the_empty_tmp(
    in_tmp: Path,
) -> None:
    venv = in_tmp / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to("/usr/bin/env")
    script = in_tmp / "agents" / "probe.py"
    script.parent.mkdir()
    script.write_text("")
    boxed = with_program(BOX, (str(venv / "bin" / "python"), str(script), "--flag"))
    assert set(boxed.shown) == {venv, script.parent}
    argv = boxed.wrap(["true"], in_tmp)
    empty_tmp = argv.index("/tmp")
    assert argv[empty_tmp - 1] == "--tmpfs"
    bound = argv.index(str(venv))
    assert argv[bound - 1] == "--ro-bind" and bound > empty_tmp


def test_never_a_scratch_places_root() -> None:
    program = Path("/tmp") / f"locus-test-agent-{uuid.uuid4().hex}"
    program.write_text("")
    try:
        assert with_program(BOX, (str(program),)).shown == ()
    finally:
        program.unlink()


def test_a_program_in_a_tmpfs_home_is_allowed_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    modules = home / ".npm-global" / "lib" / "node_modules"
    program = modules / "agent" / "cli.js"
    program.parent.mkdir(parents=True)
    program.write_text("")
    boxed = with_program(BOX.with_home(home, allow=()), (str(program),))
    assert boxed.home_allow == (".npm-global/lib/node_modules",)
    assert boxed.shown == ()
