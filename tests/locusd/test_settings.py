"""The user's config as a long-lived daemon sees it (locusd/settings.py) and the paths in it
(locusd/config.py): real files, read again as a user edits them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from locusd.config import Config, ConfigError, load
from locusd.settings import Settings


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        'state_dir = "state"\n'
        '[agent]\nprovider = "replay"\nreplay = "runs/fix.jsonl"\n'
        '[daemon]\nrepositories = ["../src", "/abs/repo", "~/code"]\n'
    )
    monkeypatch.chdir("/")  # where the daemon runs
    loaded = load(config)
    assert loaded.agent.replay == config.parent / "runs" / "fix.jsonl"
    assert loaded.daemon.repositories == [
        config.parent / ".." / "src",
        Path("/abs/repo"),
        Path.home() / "code",
    ]
    assert loaded.state_dir == config.parent / "state"
    # The agent process gets the config as JSON: the paths stay what the daemon resolved.
    assert Config.model_validate_json(loaded.model_dump_json()) == loaded


def test_an_edit_applies_at_the_next_refresh(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[agent]\nmax_output_tokens = 100\n")
    settings = Settings(load(path), path)
    path.write_text("[agent]\nmax_output_tokens = 200\n")
    assert settings.current().agent.max_output_tokens == 100  # not before a new run asks
    assert settings.refresh().agent.max_output_tokens == 200
    assert settings.problems() == []
    path.unlink()  # no file: the defaults
    assert settings.refresh() == Config()


def test_a_broken_file_keeps_the_settings_in_force_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[agent]\nmax_output_tokens = 100\n")
    settings = Settings(load(path), path)
    path.write_text("[agent]\nmax_output_tokens = 100\nmodel = \n")
    assert settings.refresh().agent.max_output_tokens == 100
    (problem,) = settings.problems()
    assert problem.startswith(f"{path}: not valid TOML") and "line 3" in problem, problem
    assert settings.error == problem
    path.write_text("[agent]\nmax_output_tokens = 0\n")
    settings.refresh()
    assert "agent.max_output_tokens: Input should be greater than 0" in str(settings.error)
    path.write_text("[agent]\nmax_output_tokens = 300\n")
    assert settings.refresh().agent.max_output_tokens == 300 and settings.error is None


def test_what_a_daemon_is_built_on_waits_for_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('state_dir = "one"\n')
    settings = Settings(load(path), path)
    path.write_text('state_dir = "two"\n[daemon]\ncloud_url = "http://x:1"\n[agent]\nmodel = "m"\n')
    now = settings.refresh()
    assert now.state_dir == tmp_path / "one" and now.daemon.cloud_url == "http://127.0.0.1:8420"
    assert now.agent.model == "m"  # the rest applies
    (problem,) = settings.problems()
    assert "state_dir, daemon.cloud_url changed" in problem and "locus daemon restart" in problem


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("127.0.0.1:8420", "'127.0.0.1:8420' has no scheme: write http://127.0.0.1:8420"),
        ("ftp://cloud", "'ftp://cloud' is not an http:// or https:// URL with a host"),
    ],
)
def test_a_cloud_url_without_http_names_the_key_and_the_fix(
    tmp_path: Path, url: str, said: str
) -> None:
    """The same rule as ``locus login --cloud``: a URL the client could not use is refused
    when the file is read, not when the first request fails."""
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\ncloud_url = "{url}"\n')
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert "daemon.cloud_url" in str(raised.value) and said in str(raised.value)
    path.write_text('[daemon]\ncloud_url = "https://locus.example.com"\n')
    assert load(path).daemon.cloud_url == "https://locus.example.com"


def test_a_config_that_cannot_be_read_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.mkdir()
    with pytest.raises(ConfigError, match=f"{path}: cannot read it"):
        load(path)


def test_the_readmes_replay_setting_names_the_transcript(tmp_path: Path) -> None:
    """README's command, run as written from the repository's root, gives the daemon a
    transcript it can find (whatever its own working directory)."""
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text(encoding="utf-8")
    (command,) = [
        line for line in readme.splitlines() if "fix-median.jsonl" in line and "printf" in line
    ]
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    subprocess.run(["bash", "-c", command], cwd=root, env=env, check=True)
    config = load(home / ".config" / "locus" / "config.toml")
    assert config.agent.provider == "replay"
    assert config.agent.replay == root / "examples" / "fix-median.jsonl"
    assert config.agent.replay.is_file()
