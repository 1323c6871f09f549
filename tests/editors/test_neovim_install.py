"""The Neovim plugin installed the ways docs/editors.md says, in a real Neovim started as a person
starts it (their init file, default plugin loading; no ``--clean``), with its own XDG dirs:

- a native package under ``start`` (loaded at startup: vim-plug, packer and ``:h packages``);
- a native package under ``opt``, loaded by ``:packadd locus`` (Neovim 0.12's ``vim.pack``
  installs there);
- the checkout on ``runtimepath`` from init.lua with ``setup{}`` called there, before the plugin
  files load (what lazy.nvim's ``dir =`` spec does).

Each time ``:Locus`` exists with its completion and the ``<Plug>`` mappings are defined."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.editors.test_neovim import PLUGIN, nvim

pytestmark = pytest.mark.timeout(120)

#: What the started Neovim reports, as JSON on stdout.
REPORT = """
local before = vim.fn.exists(':Locus')
if vim.env.LOCUS_PACKADD then vim.cmd.packadd('locus') end
io.stdout:write(vim.json.encode({
  before = before,
  command = vim.fn.exists(':Locus'),
  completion = vim.fn.getcompletion('Locus ', 'cmdline'),
  plug = vim.fn.maparg('<Plug>(locus-review)', 'n') ~= '',
  setup_ran = vim.g.locus_test_setup == true,
}))
"""


def started(tmp_path: Path, init: str = "", packadd: bool = False) -> dict[str, object]:
    config, data = tmp_path / "config", tmp_path / "data"
    (config / "nvim").mkdir(parents=True, exist_ok=True)
    (config / "nvim" / "init.lua").write_text(init)
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(data),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        **({"LOCUS_PACKADD": "1"} if packadd else {}),
    }
    script = tmp_path / "report.lua"
    script.write_text(REPORT)
    done = subprocess.run(
        [str(nvim()), "--headless", "-i", "NONE", "-c", f"luafile {script}", "-c", "qa!"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def package(tmp_path: Path, kind: str) -> None:
    where = tmp_path / "data" / "nvim" / "site" / "pack" / "locus" / kind
    where.mkdir(parents=True)
    (where / "locus").symlink_to(PLUGIN)


def loaded(report: dict[str, object]) -> None:
    assert report["command"] == 2, report
    completion = report["completion"]
    assert isinstance(completion, list) and {"review", "accept", "send-back"} <= set(completion)
    assert report["plug"] is True


def test_a_start_package_loads_at_startup(tmp_path: Path) -> None:
    package(tmp_path, "start")
    report = started(tmp_path)
    assert report["before"] == 2  # already there when the init file's commands run
    loaded(report)


def test_an_opt_package_loads_on_packadd(tmp_path: Path) -> None:
    package(tmp_path, "opt")
    report = started(tmp_path, packadd=True)
    assert report["before"] == 0  # not before :packadd
    loaded(report)


def test_on_the_runtimepath_with_setup_in_init_lua(tmp_path: Path) -> None:
    init = (
        f"vim.opt.rtp:append({json.dumps(str(PLUGIN))})\n"
        "require('locus').setup({ connect_timeout_ms = 2000 })\n"
        "require('locus').setup({})\n"  # idempotent: called twice, as plugin managers may
        "vim.g.locus_test_setup = true\n"
    )
    report = started(tmp_path, init)
    assert report["setup_ran"] is True
    loaded(report)
