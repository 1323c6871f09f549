"""Other agents inside Locus: the REAL Claude Code ACP adapter (pinned, tests/support/acp_agents.py)
run as a run's agent, inside the run's sandbox, against the loopback Anthropic server. The
scripted model uses Claude Code's own tools (Read, Edit, Bash); what Locus does around it — the
sandbox, the network, the policy, the runner's verification, the transcript — is Locus's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from locusd.agent.egress.bridge import pipe
from locusd.agent.external import presets
from locusd.agent.external.gateway import STAND_IN_KEY, inside_url
from locusd.agent.providers import ConfigurationError
from locusd.agent.report import Event, RunReport
from locusd.agent.transcript import AcpRecord, Header, VerificationRecord, read
from locusd.config import AgentConfig, Config, ExternalAgentConfig
from tests.locusd import daemonmachine
from tests.locusd.agentkit import (
    API_KEY,
    BUGGY,
    FIXED,
    TASK,
    anthropic,
    fix_median_session,
    git,
    make_config,
    make_sample_repo,
    run,
)
from tests.locusd.cli.test_cli_agent import locus
from tests.locusd.daemonmachine import Machine, serving
from tests.locusd.test_daemon_notify import editor, start
from tests.support.acp_agents import installed
from tests.support.anthropic_server import AnthropicServer, Reply, text, tool_use
from tests.support.listener import CountingListener

machine = daemonmachine.machine
WORKDIR = re.compile(r"Primary working directory: (\S+)")


def worktree_of(body: dict[str, Any]) -> str:
    """Where Claude Code works (its system prompt says), as the scripted model needs it."""
    found = WORKDIR.search(json.dumps(body["system"]))
    assert found is not None, "Claude Code's system prompt names no working directory"
    return found[1].rstrip("\\n").split("\\n")[0]


def claude_config(where: Path, **agent: Any) -> Config:
    config = make_config(where, agent="claude", **agent)
    command = [str(installed().claude)]
    return config.model_copy(update={"agents": {"claude": ExternalAgentConfig(command=command)}})


class Script:
    """Claude Code's turns, by how many tool results it has sent back."""

    def __init__(self, *steps: Reply | Callable[[str], Reply]) -> None:
        self.steps = steps
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        root = worktree_of(body)
        done = sum(
            1
            for message in body["messages"]
            if message["role"] == "user"
            and isinstance(message["content"], list)
            and any(block.get("type") == "tool_result" for block in message["content"])
        )
        step = self.steps[min(done, len(self.steps) - 1)]
        return step(root) if callable(step) else step


def fix_median() -> Script:
    return Script(
        lambda root: Reply(
            [text("Reading the code."), tool_use("Read", {"file_path": f"{root}/stats.py"})],
            stop_reason="tool_use",
        ),
        lambda root: Reply(
            [
                tool_use(
                    "Edit",
                    {"file_path": f"{root}/stats.py", "old_string": BUGGY, "new_string": FIXED},
                )
            ],
            stop_reason="tool_use",
        ),
        Reply(
            [tool_use("Bash", {"command": "python3 -m pytest -q", "description": "run tests"})],
            stop_reason="tool_use",
        ),
        Reply([text("median() now averages the two middle values of an even list.")]),
    )


@pytest.fixture
def model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)


async def claude_run(tmp_path: Path, script: Script, **agent: Any) -> tuple[RunReport, int]:
    """The run's report, and the model server's port."""
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url, **agent)
        report = await run(anthropic(server), repo, config)
        return report, int(server.base_url.rsplit(":", 1)[1])


@pytest.mark.usefixtures("model_env")
async def test_claude_code_fixes_the_sample_and_the_runner_verifies(tmp_path: Path) -> None:
    script = fix_median()
    report, port = await claude_run(tmp_path, script)
    assert report.outcome == "completed", (report.reason, report.warnings)
    # The runner's own verification, after the agent's end of turn.
    assert report.verification is not None and report.verification.passed
    assert "(ordered[middle - 1] + ordered[middle]) / 2" in report.diff
    assert report.summary == "median() now averages the two middle values of an even list."
    # Claude Code's own tools, as its first request listed them.
    names = {tool["name"] for tool in script.bodies[0]["tools"]}
    assert {"Read", "Edit", "Write", "Bash"} <= names
    # The agent worked in the run's worktree, which it saw at its own path.
    assert worktree_of(script.bodies[0]) == report.worktree
    # The ACP traffic is in the transcript: Locus's prompt and the agent's updates.
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    methods = [r.message.get("method") for r in records if r.direction == "to_agent"]
    assert {"initialize", "session/new", "session/prompt"} <= set(methods)
    assert any(r.message.get("method") == "session/update" for r in records)
    verified = [r for r in read(Path(report.transcript)) if isinstance(r, VerificationRecord)]
    assert [r.evidence.passed for r in verified] == [True]
    # Its model calls went through the agent's own egress proxy, to the endpoint alone.
    hosts = {(use.host, use.port, use.allowed) for use in report.network}
    assert ("127.0.0.1", port, True) in hosts


def blocks_sent_back(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results in Claude Code's newest message."""
    content = body["messages"][-1]["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def result_of(block: dict[str, Any]) -> str:
    content = block["content"]
    return content if isinstance(content, str) else json.dumps(content)


@pytest.mark.usefixtures("model_env")
async def test_a_command_the_policy_denies_is_refused_when_the_agent_asks(
    tmp_path: Path,
) -> None:
    """Claude Code asks before a command that changes things; Locus answers with the user's
    policy (``git push`` is denied by default), never ``allow_always``."""
    events: list[Event] = []
    script = Script(
        Reply(
            [tool_use("Bash", {"command": "git push origin main", "description": "publish"})],
            stop_reason="tool_use",
        ),
        Reply([text("I could not push.")]),
    )
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url)
        report = await run(anthropic(server), repo, config, on_event=events.append)
    (answer,) = blocks_sent_back(script.bodies[1])
    assert answer.get("is_error") is True, answer
    notes = [e.text for e in events if e.kind == "note" and e.data.get("kind") == "policy"]
    assert any("git push" in note and "not run" in note for note in notes), notes
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    chosen = [
        r.message["result"]["outcome"]
        for r in records
        if r.direction == "to_agent" and "outcome" in r.message.get("result", {})
    ]
    assert chosen and all(c.get("optionId") != "allow_always" for c in chosen), chosen
    assert all(c.get("optionId") in ("reject", None) for c in chosen), chosen


def commandlines() -> list[bytes]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            found.append((entry / "cmdline").read_bytes())
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped by its new parent, does
    not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def processes_in(place: Path) -> list[int]:
    """Processes whose working directory is ``place`` (or under it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == place or place in cwd.parents:
            found.append(int(entry.name))
    return found


def long_command() -> Script:
    """Claude Code's Bash runs ``sleep 4343`` with a ``sleep 4242`` child that leaves its
    process group: what a cancel has to end."""
    return Script(
        Reply(
            [
                tool_use(
                    "Bash",
                    {"command": "setsid sleep 4242 & sleep 4343", "description": "wait"},
                )
            ],
            stop_reason="tool_use",
        ),
        Reply([text("unreachable")]),
    )


async def cancelled_in_a_command(
    where: Path, after: Callable[[list[int]], Awaitable[None]] | None = None
) -> tuple[RunReport, list[int], Path]:
    """A full-auto Claude run cancelled once its :func:`long_command` runs: the report, the
    processes that were in the worktree then, and the worktree. ``after`` is awaited with
    those processes right after the cancel, while the run stops them (bench/external.py times
    it)."""
    cancel = asyncio.Event()
    seen: list[list[int]] = []
    worktrees: list[Path] = []

    async def cancel_once_the_command_runs() -> None:
        while not any(b"4343" in command for command in commandlines()):
            await asyncio.sleep(0.01)
        seen.append(processes_in(worktrees[0]))
        cancel.set()
        if after is not None:
            await after(seen[0])

    repo = make_sample_repo(where)
    async with AnthropicServer(long_command()) as server:
        config = claude_config(where, base_url=server.base_url, mode="full-auto")
        canceller = asyncio.ensure_future(cancel_once_the_command_runs())
        try:
            report = await run(
                anthropic(server),
                repo,
                config,
                cancel=cancel,
                on_worktree=lambda worktree: worktrees.append(worktree.path),
            )
            if seen:
                await canceller
        finally:
            canceller.cancel()
    return report, seen[0] if seen else [], worktrees[0]


@pytest.mark.usefixtures("model_env")
async def test_a_cancel_ends_the_session_and_kills_the_agents_whole_tree(tmp_path: Path) -> None:
    """Cancelled while Claude Code's own Bash runs a long command (with a child that leaves
    its process group): ``session/cancel``, then the sandbox's PID namespace killed — no
    process of the agent's is left in the worktree."""
    report, seen, worktree = await cancelled_in_a_command(tmp_path)
    assert report.outcome == "cancelled", (report.reason, report.warnings)
    assert len(seen) >= 2, "the agent and its command ran in the worktree"
    assert processes_in(worktree) == []
    assert not any(b"4343" in c or b"4242" in c for c in commandlines())
    assert [pid for pid in seen if running(pid)] == []


@pytest.mark.usefixtures("model_env")
async def test_the_repository_cannot_choose_the_agent(tmp_path: Path) -> None:
    """``.locus.toml`` is the attacker's file: an agent or a command named there is ignored
    (the built-in loop runs) and the report says so."""
    repo = make_sample_repo(tmp_path)
    (repo / ".locus.toml").write_text(
        'agent = "claude"\n\n[agents.claude]\ncommand = ["/bin/sh", "-c", "touch /tmp/owned"]\n'
    )
    git(repo, "add", ".locus.toml")
    git(repo, "commit", "-q", "-m", "choose my own agent")
    async with AnthropicServer(fix_median_session()) as server:
        report = await run(anthropic(server), repo, make_config(tmp_path))
    assert report.outcome == "completed"
    header = read(Path(report.transcript))[0]
    assert isinstance(header, Header) and header.provider == "anthropic"
    warned = "\n".join(report.warnings)
    assert ".locus.toml sets 'agent': ignored" in warned
    assert ".locus.toml sets 'agents' (agents.claude): ignored" in warned


def test_an_unknown_agent_is_a_clear_error(tmp_path: Path) -> None:
    repo = make_sample_repo(tmp_path)
    (tmp_path / "config.toml").write_text(
        f'state_dir = "{tmp_path / "state"}"\n[agent]\nagent = "nosuch"\n'
    )
    env = {"ANTHROPIC_API_KEY": API_KEY}
    by_config = locus(tmp_path, "agent", "run", "--repo", str(repo), "--task", "t", env=env)
    assert by_config.returncode == 2 and "Traceback" not in by_config.stderr
    assert "agent.agent = 'nosuch'" in by_config.stderr and "[agents.nosuch]" in by_config.stderr
    (tmp_path / "config.toml").write_text(f'state_dir = "{tmp_path / "state"}"\n')
    by_flag = locus(
        tmp_path, "agent", "run", "--repo", str(repo), "--task", "t", "--agent", "nosuch", env=env
    )
    assert by_flag.returncode == 2 and "Traceback" not in by_flag.stderr
    assert "--agent" in by_flag.stderr and "builtin, claude, codex, gemini" in by_flag.stderr


#: Run by Claude Code's own Bash inside the sandbox: a host loopback service (the canary) and
#: an outside host through the proxy the agent is given.
PROBE = """python3 - <<'PY'
import socket, sys, urllib.request
for what, reach in (
    ("canary", lambda: socket.create_connection(("127.0.0.1", {port}), 3).close()),
    ("outside", lambda: urllib.request.urlopen("http://example.com/", timeout=5).close()),
):
    try:
        reach()
        print(what, "REACHED")
    except Exception as exc:
        print(what, "refused:", type(exc).__name__)
PY"""


@pytest.mark.usefixtures("model_env")
async def test_the_agents_network_reaches_its_model_and_nothing_else(tmp_path: Path) -> None:
    """The agent's own commands (not only Locus's terminals) share its network: the model
    endpoint, and neither another service on the host's loopback nor any other host."""
    server_socket = socket.socket()
    server_socket.bind(("127.0.0.1", 0))
    canary = CountingListener(server_socket)
    probe = PROBE.format(port=server_socket.getsockname()[1])
    script = Script(
        Reply(
            [tool_use("Bash", {"command": probe, "description": "probe"})], stop_reason="tool_use"
        ),
        Reply([text("probed")]),
    )
    try:
        report, port = await claude_run(tmp_path, script, mode="full-auto")
    finally:
        canary.close()
    (answer,) = blocks_sent_back(script.bodies[1])
    said = result_of(answer)
    assert "canary refused" in said and "outside refused" in said, said
    assert "REACHED" not in said
    assert canary.connections == 0
    uses = {(use.host, use.port): use.allowed for use in report.network}
    assert uses.get(("127.0.0.1", port)) is True
    assert uses.get(("example.com", 80)) is False, uses


@pytest.mark.timeout(180)
async def test_a_daemon_run_with_claude_code_ends_awaiting_review(machine: Machine) -> None:
    """Through the real daemon (``locus/runs/start`` with ``agent``): its agent process runs
    Claude Code, and the run waits for review with the runner's verification passed and the
    diff in the review."""
    script = fix_median()
    async with AnthropicServer(script) as model:
        machine.configure(
            f'[agent]\nbase_url = "{model.base_url}"\n'
            f'[agents.claude]\ncommand = ["{installed().claude}"]\n'
        )
        async with serving(machine), editor(machine) as watcher:
            run_id = await start(machine, watcher, task=TASK, agent="claude")
            note = await watcher.next_note()
            assert (note.kind, note.runId) == ("review", run_id)
            shown = await watcher.lsp.call("locus/runs/show", {"runId": run_id})
            review = await watcher.lsp.call("locus/review/get", {"runId": run_id})
    assert (shown.state, shown.outcome) == ("awaiting_review", "completed")
    assert review.verification.passed is True  # the runner's own, after the agent's turn
    assert review.summary == "median() now averages the two middle values of an even list."
    (changed,) = review.files
    assert changed.path == "stats.py"
    assert worktree_of(script.bodies[0]) != str(machine.repo)  # its own worktree


@pytest.mark.usefixtures("model_env")
async def test_a_spent_budget_cancels_the_session_and_kills_the_agent(tmp_path: Path) -> None:
    """``max_turns`` counts the agent's tool calls: the second of a one-turn budget ends the
    session (``session/cancel``, then the agent's tree killed), ``budget_exhausted``."""
    worktrees: list[Path] = []
    script = fix_median()
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(tmp_path, base_url=server.base_url, budget={"max_turns": 1})
        report = await run(
            anthropic(server),
            repo,
            config,
            on_worktree=lambda worktree: worktrees.append(worktree.path),
        )
    assert report.outcome == "budget_exhausted", (report.reason, report.warnings)
    assert report.reason is not None and "max turns" in report.reason
    assert report.verification is None  # no verify for a run that did not finish
    records = [r for r in read(Path(report.transcript)) if isinstance(r, AcpRecord)]
    assert report.diff == ""  # its second tool call (the Edit) was refused, not run
    sent = [r.message.get("method") for r in records if r.direction == "to_agent"]
    assert "session/cancel" in sent
    assert processes_in(worktrees[0]) == []


async def probe_run(
    tmp_path: Path,
    repo: Path,
    requests: list[dict[str, str]],
    *,
    mark: str = "",
    watch: Callable[[Event], None] = lambda event: None,
    ended: Callable[[], None] = lambda: None,
    **agent: Any,
) -> tuple[RunReport, list[dict[str, Any]]]:
    """A run of the probe agent (tests/locusd/acp/probe_agent.py) as ``[agents.probe]``, and
    its answers (what its client gave back for each request), each with ``"running"``: the
    marked commands (``5252``) still running when it was given. ``mark`` is put in its command
    line, ``watch`` hears every event, ``ended`` is called as soon as the report is back
    (before the model server stops), ``agent`` goes to the ``[agent]`` table, ``cancel`` to
    the run."""
    got: list[dict[str, Any]] = []
    cancel = agent.pop("cancel", None)

    def hear(event: Event) -> None:
        watch(event)
        if event.kind == "text" and event.text.strip():
            running = [c.decode() for c in commandlines() if b"5252" in c]
            got.append(json.loads(event.text) | {"running": running})

    async with AnthropicServer([]) as server:
        config = make_config(tmp_path, base_url=server.base_url, **agent)
        command = [sys.executable, str(Path(__file__).with_name("probe_agent.py"))]
        agents = {"probe": ExternalAgentConfig(command=[*command, *([mark] if mark else [])])}
        chosen = config.agent.model_copy(update={"agent": "probe"})
        config = Config.model_validate({**dict(config), "agent": chosen, "agents": agents})
        report = await run(
            anthropic(server), repo, config, task=json.dumps(requests), on_event=hear, cancel=cancel
        )
        ended()
    return report, got


async def test_file_requests_are_confined_to_the_worktree(tmp_path: Path) -> None:
    """``fs/*`` through the file tools' confined open: inside the worktree, yes; outside it,
    through a symlink leading out, in ``.git/``, with ``..``, or relative: an ACP error naming
    the path, and nothing read or written."""
    outside = tmp_path / "secret.txt"
    outside.write_text("the user's secret\n")
    repo = make_sample_repo(tmp_path / "src")
    (repo / "link").symlink_to(tmp_path)  # the repository's content: a link leading out
    git(repo, "add", "link")
    git(repo, "commit", "-q", "-m", "a link out")
    report, got = await probe_run(
        tmp_path,
        repo,
        [
            {"read": "{root}/stats.py"},
            {"write": "{root}/notes.txt", "content": "written by the agent\n"},
            {"read": str(outside)},
            {"write": str(tmp_path / "planted.txt"), "content": "x"},
            {"read": "{root}/link/secret.txt"},
            {"write": "{root}/link/planted.txt", "content": "x"},
            {"read": "{root}/.git/config"},
            {"write": "{root}/../escape.txt", "content": "x"},
            {"read": "stats.py"},
        ],
    )
    assert "def median" in got[0]["content"]
    assert "written" in got[1]
    assert (Path(report.worktree) / "notes.txt").read_text() == "written by the agent\n"
    for refused in got[2:]:
        assert refused["error"] == -32602 and "path" in refused["data"], refused
    assert "outside the run's worktree" in got[2]["data"]["path"]
    assert "symlink" in got[4]["data"]["path"], got[4]
    assert ".git" in got[6]["data"]["path"]
    assert not (tmp_path / "planted.txt").exists()
    assert outside.read_text() == "the user's secret\n"
    assert not (tmp_path.parent / "escape.txt").exists()


async def test_terminals_run_through_the_policy_and_the_sandbox(tmp_path: Path) -> None:
    """``terminal/*`` is ``run_command``: the policy (``git push`` is denied by default, so it
    never runs), the sandbox (the checkout outside the worktree is read-only), and its kill
    (``terminal/kill`` ends the command's whole tree)."""
    repo = make_sample_repo(tmp_path)
    report, got = await probe_run(
        tmp_path,
        repo,
        [
            {"run": "echo hello from $PWD"},
            {"run": "git push origin main"},
            {"run": f"touch {repo}/planted.txt"},
            {"kill": "setsid sleep 5252 & sleep 5252"},
        ],
    )
    assert got[0]["exit"] == 0 and f"hello from {report.worktree}" in got[0]["output"]
    assert got[1]["exit"] != 0 and "not run" in got[1]["output"], got[1]
    assert got[2]["exit"] != 0 and "Read-only file system" in got[2]["output"], got[2]
    assert not (repo / "planted.txt").exists()
    # terminal/kill: the command and what it started (a setsid child too) are gone at once.
    assert got[3]["exit"] != 0 and got[3]["running"] == [], got[3]


def this_machines_address() -> str:
    """An address of this machine that is not loopback (where a model server off the
    loopback can listen)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        address = str(probe.getsockname()[0])
    except OSError:
        address = "127.0.0.1"
    finally:
        probe.close()
    if address.startswith("127."):
        pytest.fail("this test needs a network interface with a non-loopback IPv4 address")
    return address


@contextlib.asynccontextmanager
async def relayed(host: str, port: int) -> AsyncIterator[int]:
    """A TCP relay on ``host`` to the loopback ``port``: the model server off the loopback."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        writer.close()
        up_writer.close()

    server = await asyncio.start_server(serve, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.usefixtures("model_env")
async def test_a_model_endpoint_off_the_loopback_is_reached_through_the_proxy(
    tmp_path: Path,
) -> None:
    """A base URL that is not on the loopback: Claude Code honours the HTTP proxy the relay
    gives it, and the egress proxy lets through that endpoint alone."""
    address = this_machines_address()
    script = fix_median()
    repo = make_sample_repo(tmp_path)
    async with (
        AnthropicServer(script) as server,
        relayed(address, int(server.base_url.rsplit(":", 1)[1])) as port,
    ):
        config = claude_config(tmp_path, base_url=f"http://{address}:{port}")
        report = await run(anthropic(server), repo, config)
    assert report.outcome == "completed", (report.reason, report.warnings)
    uses = {(use.host, use.port): use for use in report.network}
    assert uses[(address, port)].allowed and uses[(address, port)].sent > 0


def test_presets_say_what_is_missing_and_how_to_get_it(tmp_path: Path) -> None:
    config = AgentConfig(agent="claude")
    with pytest.raises(ConfigurationError) as no_key:
        presets.resolve(config, {}, {"PATH": str(tmp_path)}, tmp_path)
    assert "ANTHROPIC_API_KEY" in str(no_key.value)
    with pytest.raises(ConfigurationError) as no_program:
        presets.resolve(config, {}, {"PATH": str(tmp_path), "ANTHROPIC_API_KEY": "k"}, tmp_path)
    said = str(no_program.value)
    assert "claude-agent-acp is not on PATH" in said
    assert "npm i -g @zed-industries/claude-agent-acp" in said and "[agents.claude]" in said


def test_the_codex_preset_writes_a_config_no_value_can_add_keys_to(tmp_path: Path) -> None:
    hostile = 'http://model.example/v1"\nmodel_provider = "evil'
    config = AgentConfig(agent="codex", base_url=hostile, model='m"\nx = 1')
    agents = {"codex": ExternalAgentConfig(command=["/bin/true"])}
    env = {"OPENAI_API_KEY": "sk-test"}
    launch = presets.resolve(config, agents, env, tmp_path)
    home = Path(launch.env["CODEX_HOME"])
    assert launch.writable == (home,) and launch.env["OPENAI_API_KEY"] == STAND_IN_KEY
    assert launch.key == "sk-test" and "sk-test" not in repr(launch)  # the gateway's to add
    written = tomllib.loads((home / "config.toml").read_text())
    assert written["model_provider"] == "locus" and written["model"] == 'm"\nx = 1'
    provider = written["model_providers"]["locus"]
    # Codex is given the run's model gateway, with the endpoint's path (its quote kept as a
    # value); the gateway forwards to the endpoint itself.
    assert provider["base_url"] == inside_url(hostile) and '"model_provider' in provider["base_url"]
    assert launch.upstream == hostile and provider["wire_api"] == "responses"
    assert provider["env_key"] == "OPENAI_API_KEY"


@pytest.mark.usefixtures("model_env")
async def test_a_command_the_policy_asks_about_goes_to_the_users_approval(tmp_path: Path) -> None:
    """ "ask" in the user's policy: the question goes through the run's approver (the same one
    the built-in ``run_command`` asks through: the daemon's ``locus/approval``), and the user's
    no is the agent's reject."""
    asked: list[tuple[str, str]] = []

    async def approver(command: str, reason: str) -> bool:
        asked.append((command, reason))
        return False

    script = fix_median()
    repo = make_sample_repo(tmp_path)
    async with AnthropicServer(script) as server:
        config = claude_config(
            tmp_path, base_url=server.base_url, policy={"ask": ["python3 -m pytest*"]}
        )
        report = await run(anthropic(server), repo, config, approver=approver)
    assert [command for command, _ in asked] == ["python3 -m pytest -q"]
    assert "python3 -m pytest*" in asked[0][1]
    (answer,) = blocks_sent_back(script.bodies[3])
    assert answer.get("is_error") is True, answer
    # The runner's own verification still ran after the agent's turn, and passed.
    assert report.outcome == "completed" and report.verification is not None
    assert report.verification.passed
