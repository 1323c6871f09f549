"""The default policy against publishing, pushing and uploading, and its container choice: the
forms a command may take when it runs (a runner's command, the tool without its leading
options) are judged too — but only ever to make a verdict stricter."""

from __future__ import annotations

from pathlib import Path

import pytest

from locusd.agent.policy import PUBLISHING, CommandPolicy, decide, forms
from locusd.config import ConfigError, load

POLICY = CommandPolicy()


@pytest.mark.parametrize(
    "command",
    [
        "npm publish",
        "pnpm publish --no-git-checks",
        "yarn publish",
        "yarn npm publish",
        "twine upload dist/*",
        "poetry publish --build",
        "uv publish",
        "flit publish",
        "hatch publish",
        "cargo publish",
        "gem push x.gem",
        "mvn deploy",
        "gradle publish",
        "./gradlew publishToMavenCentral",
        "docker push img",
        "docker image push img",
        "docker compose push",
        "docker buildx build --push -t img .",
        "podman push img",
        "gh release create v1",
        "maturin publish",
        "npx changeset publish",
        "npx lerna publish from-git",
    ],
)
def test_publishing_commands_are_denied_by_default(command: str) -> None:
    ruling = decide(POLICY, command, unattended=False)
    assert ruling.verdict == "deny" and "deny pattern" in ruling.reason, ruling


@pytest.mark.parametrize(
    ("command", "runs_as"),
    [
        ("npm --registry http://x publish", "npm publish"),
        ("npm --registry=http://x publish", "npm publish"),
        ("npm -w pkg publish", "npm publish"),
        ("npx npm publish", "npm publish"),
        ("npx -y npm publish", "npm publish"),
        ("npx --package npm npm publish", "npm publish"),
        ("npm exec -- npm publish", "npm publish"),
        ("pnpm dlx npm publish", "npm publish"),
        ("python -m twine upload dist/*", "twine upload dist/*"),
        ("python3 -m twine upload", "twine upload"),
        ("python3.12 -I -m twine upload", "twine upload"),
        ("python3 -W ignore -m twine upload", "twine upload"),
        ("/usr/bin/python3 -mtwine upload", "twine upload"),
        ("uv run twine upload", "twine upload"),
        ("uvx twine upload", "twine upload"),
        ("poetry run twine upload", "twine upload"),
        ("cargo +nightly publish", "cargo publish"),
        ("buildah --storage-driver vfs push img", "buildah push img"),
        ("gh -R me/repo release create v1", "gh release create v1"),
        ("git -C . push", "git push"),
        ("git --git-dir=.git push origin", "git push origin"),
    ],
)
def test_runners_and_leading_options_do_not_hide_a_publish(command: str, runs_as: str) -> None:
    ruling = decide(POLICY, command, unattended=False)
    assert ruling.verdict == "deny", ruling
    assert f"run as {runs_as!r}" in ruling.reason


@pytest.mark.parametrize(
    "command",
    [
        "env -i npm publish",
        "env -u HOME npm publish",
        "nice -n 10 cargo publish",
        "timeout 60 twine upload dist/*",
        "timeout -s KILL 60 npm publish",
        "stdbuf -o L npm publish",
        'bash -c "npm publish"',
        "mvn clean deploy",
        "./gradlew clean build publish",
        "ls && npm publish",
        "npm \\\npublish",
        "(npm publish)",
        "{ npm publish; }",
        "cat <(npm publish)",
        "echo >(cargo publish)",
        "if npm publish; then :; fi",
        "! git push",
        "for x in a; do twine upload dist/*; done",
        "while true; do git push; done",
        "f() { git push; }; f",
    ],
)
def test_wrappers_shell_syntax_and_goal_lists_do_not_hide_a_publish(command: str) -> None:
    assert decide(POLICY, command, unattended=False).verdict == "deny"


@pytest.mark.parametrize(
    "command",
    [
        "npm test",
        "npm test -- --grep publish",
        "npm install",  # ask, not deny
        "git commit -m 'push the fix'",
        "git -c push.default=simple status",
        "python3 -c 'print(1)'",
        "echo npm publish",
        "cargo test --features publish",
    ],
)
def test_what_only_mentions_a_publish_is_not_denied(command: str) -> None:
    assert decide(POLICY, command, unattended=False).verdict != "deny"


def test_a_form_never_widens_an_allow_pattern() -> None:
    """``git -c alias.status='!sh' status`` is not ``git status``: a dropped option can change
    what runs, so only the line as written can match an allow pattern."""
    strict = CommandPolicy(allow=["git status*"], ask=[], deny=[], default="ask")
    assert decide(strict, "git status", unattended=False).verdict == "allow"
    hidden = decide(strict, "git -c alias.status=!sh status", unattended=False)
    assert hidden.verdict == "ask"
    assert "git status" in [" ".join(f) for f in forms(["git", "-c", "alias.status=!sh", "status"])]


def test_python_module_forms_reach_ask_patterns_too() -> None:
    asking = CommandPolicy(ask=["pip install*"])
    assert decide(asking, "python3 -m pip install requests", unattended=False).verdict == "ask"


def test_publishing_patterns_are_in_the_defaults_and_replaced_with_the_deny_list() -> None:
    assert set(PUBLISHING) <= set(POLICY.deny)
    mine = CommandPolicy(deny=["rm *"])
    assert decide(mine, "npm publish", unattended=False).verdict == "allow"  # the user's choice


# --- containers ------------------------------------------------------------------------------

ENGINES = [
    "docker build -t x .",
    "docker compose up -d",
    "docker-compose up",
    "podman run --rm alpine true",
    "nerdctl ps",
    "buildah bud .",
    "/usr/local/bin/docker ps",
    "sudo -n true || docker ps",
    "npx docker ps",
]


@pytest.mark.parametrize("command", ENGINES)
def test_container_engines_are_asked_about_by_default(command: str) -> None:
    attended = decide(POLICY, command, unattended=False)
    assert attended.verdict in ("ask", "deny") and attended.containers
    if attended.verdict == "ask":
        assert "container engine" in attended.reason and "containers = 'ask'" in attended.reason
    unattended = decide(POLICY, command, unattended=True)
    assert unattended.verdict == "deny" and unattended.containers


@pytest.mark.parametrize("command", [c for c in ENGINES if not c.startswith("sudo")])
def test_the_containers_choice_decides(command: str) -> None:
    assert decide(POLICY, command, unattended=True, containers="allow").verdict == "allow"
    denied = decide(POLICY, command, unattended=False, containers="deny")
    assert denied.verdict == "deny" and "containers = 'deny'" in denied.reason


def test_the_users_patterns_still_win_over_allowed_containers() -> None:
    mine = CommandPolicy(ask=["docker run*"], deny=["docker rm*"])
    assert decide(mine, "docker run x", unattended=False, containers="allow").verdict == "ask"
    assert decide(mine, "docker rm x", unattended=False, containers="allow").verdict == "deny"
    assert decide(mine, "docker ps", unattended=False, containers="allow").verdict == "allow"
    push = decide(POLICY, "docker push x", unattended=False, containers="allow")
    assert push.verdict == "deny" and "docker push*" in push.reason


def test_an_allow_pattern_does_not_replace_the_containers_consent() -> None:
    """The socket comes with ``containers``, not with a pattern: without it the command would
    run without its engine."""
    mine = CommandPolicy(allow=["docker build*"])
    assert decide(mine, "docker build .", unattended=False).verdict == "ask"


def test_only_a_command_that_runs_an_engine_counts() -> None:
    for command in ("echo docker", "grep -r docker .", "cat Dockerfile", "ls docker-compose.yml"):
        ruling = decide(POLICY, command, unattended=True)
        assert ruling.verdict == "allow" and not ruling.containers, command


def test_a_bad_containers_value_names_the_key_and_the_choices(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[agent]\ncontainers = "yes"\n')
    with pytest.raises(ConfigError) as caught:
        load(config)
    assert "agent.containers" in str(caught.value) and "'ask', 'allow' or 'deny'" in str(
        caught.value
    )
