"""The pinned ACP agents, driven without Locus: each writes a file in a temporary git repo
through a scripted model on a loopback server.

This is the groundwork for running them as Locus providers: it pins down, per adapter, the
environment it needs, the model API it speaks (and the tool shapes it sends), and how it
acts on the client — which ``fs/*`` and ``session/request_permission`` calls it makes. A
version bump that changes any of that fails here first. docs/acp-agents-notes.md records
the findings. Each run's time is printed (``-s``), not asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from acp import PROTOCOL_VERSION, Client, RequestError, spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    FileSystemCapabilities,
    PermissionOption,
    PromptResponse,
    ReadTextFileResponse,
    RequestPermissionResponse,
    ToolCallUpdate,
    WriteTextFileResponse,
)

from locusd.agent.external import presets
from tests.support import anthropic_server, gemini_server, responses_server
from tests.support.acp_agents import installed
from tests.support.programs import required
from tests.support.scripted import Json, Recorded, Script

KEY = "sk-dummy-not-a-real-key"
PROMPT = "Create hello.txt saying hello."
#: A hung agent fails the test with this message instead of stalling the suite.
TURN_DEADLINE_S = 120.0


@dataclass
class RecordingClient:
    """The client side of ACP: answers permissions with "allow once" (or "reject once"),
    serves ``fs/*`` inside ``root`` only, and records everything the agent asked and sent."""

    root: Path
    allow: bool = True
    updates: list[Json] = field(default_factory=list)
    permissions: list[tuple[ToolCallUpdate, list[PermissionOption]]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    def _inside(self, path: str) -> Path:
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise RequestError.invalid_params({"path": path, "reason": "outside the workspace"})
        return resolved

    async def request_permission(
        self,
        session_id: str,
        tool_call: ToolCallUpdate,
        options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:
        self.permissions.append((tool_call, options))
        once = next(o for o in options if o.kind == ("allow_once" if self.allow else "reject_once"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(option_id=once.option_id, outcome="selected")
        )

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append(update.model_dump(mode="json", exclude_none=True))

    async def read_text_file(
        self,
        session_id: str,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:
        self.reads.append(path)
        target = self._inside(path)
        if not target.is_file():
            raise RequestError.resource_not_found(path)  # ACP's code for a missing file
        return ReadTextFileResponse(content=target.read_text())

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        self.writes.append(path)
        self._inside(path).write_text(content)
        return WriteTextFileResponse()

    def tool_calls(self) -> list[Json]:
        return [u for u in self.updates if u["session_update"] == "tool_call"]


@dataclass
class Turn:
    client: RecordingClient
    result: PromptResponse
    seconds: float


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no inherited credentials and no ``IS_SANDBOX`` (the machine's
    ``IS_SANDBOX=yes`` makes Claude Code exit when run as root), plus ``extra``: the preset's
    recipe (``locusd/agent/external/presets.py``, as Locus runs it). The SDK's spawn adds only
    ``LOGNAME``, ``SHELL``, ``TERM`` and ``USER`` from ours (``HOME``/``PATH`` are these)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", **extra}
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def git_repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


async def one_turn(
    name: str,
    command: Path,
    *args: str,
    env: Mapping[str, str],
    repo: Path,
    fs: FileSystemCapabilities,
    mode: str | None = None,
    allow: bool = True,
) -> Turn:
    """initialize, session/new in ``repo`` (optionally session/set_mode), one prompt.

    The agent runs in its own process group (``setsid``), killed whole at the end: the npm
    wrapper of codex-acp exits on SIGTERM but leaves its native binary running.
    """
    client = RecordingClient(repo, allow)
    # Only the methods the client offers are implemented: the SDK answers the rest (the
    # terminal/* it did not advertise) with method-not-found.
    handler = cast(Client, client)
    setsid = required("setsid", "util-linux")
    started = time.monotonic()
    with (repo.parent / f"{command.name}.stderr").open("wb") as stderr:
        async with spawn_agent_process(
            handler, setsid, str(command), *args, env=env, cwd=repo,
            transport_kwargs={"stderr": stderr},
        ) as (conn, process):  # fmt: skip
            try:
                await conn.initialize(
                    protocol_version=PROTOCOL_VERSION,
                    client_capabilities=ClientCapabilities(fs=fs, terminal=False),
                )
                session = await conn.new_session(cwd=str(repo), mcp_servers=[])
                if mode is not None:
                    await conn.set_session_mode(session_id=session.session_id, mode_id=mode)
                result = await asyncio.wait_for(
                    conn.prompt(session_id=session.session_id, prompt=[text_block(PROMPT)]),
                    TURN_DEADLINE_S,
                )
            except TimeoutError:
                pytest.fail(f"{name} did not finish its turn in {TURN_DEADLINE_S:.0f} s")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
    seconds = time.monotonic() - started
    print(f"\n{name}: one turn over ACP in {seconds:.1f} s")
    return Turn(client, result, seconds)


def answered(items: list[Any], kind: str) -> bool:
    """Whether a request already carries a tool result (the agent's second call)."""
    return any(isinstance(i, dict) and kind in (i.get("type"), *i) for i in items)


# -- Codex ---------------------------------------------------------------------------------

CODEX_MODEL = "gpt-5.3-codex"  # a model Codex knows: it then declares apply_patch
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello from codex\n*** End Patch\n"


@pytest.fixture
def codex_home() -> Iterator[Path]:
    """``CODEX_HOME`` outside the temp dir: Codex refuses to put its helper binaries (the
    ``apply_patch`` it puts first on its commands' PATH) under a world-writable temp dir."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "locus-tests"
    cache.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="codex-home-", dir=cache))
    assert not home.is_relative_to(Path(tempfile.gettempdir()))
    try:
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def codex_script(body: Json) -> responses_server.ResponsesItem:
    if answered(body["input"], "custom_tool_call_output"):
        return responses_server.Reply([responses_server.message("Created hello.txt.")])
    return responses_server.Reply([responses_server.custom_tool_call("apply_patch", PATCH)])


async def codex_turn(
    tmp_path: Path, codex_home: Path, mode: str, allow: bool = True
) -> tuple[Turn, list[Recorded]]:
    """One Codex turn whose model adds hello.txt with apply_patch."""
    agents = installed()
    repo = git_repo(tmp_path / "repo")
    async with responses_server.ResponsesServer(codex_script) as server:
        # The codex preset's own recipe: config.toml in CODEX_HOME, the key in OPENAI_API_KEY.
        made, _ = presets.PRESETS["codex"].env(
            presets.ModelAccess(f"{server.base_url}/v1", KEY, CODEX_MODEL, codex_home)
        )
        env = agent_env(tmp_path, **made)
        no_fs = FileSystemCapabilities(read_text_file=False, write_text_file=False)
        turn = await one_turn(
            "codex-acp", agents.codex, env=env, repo=repo, fs=no_fs, mode=mode, allow=allow
        )
    assert {(r.path, r.auth_style, r.api_key) for r in server.requests} == {
        ("/v1/responses", "bearer", KEY)
    }
    first = server.requests[0].body
    assert first["stream"] is True and first["model"] == CODEX_MODEL
    (patch_tool,) = [t for t in first["tools"] if t.get("name") == "apply_patch"]
    assert patch_tool["type"] == "custom" and patch_tool["format"]["type"] == "grammar"
    # Codex applies patches itself: it never uses fs/*, even when offered.
    assert turn.client.writes == turn.client.reads == []
    # Under the temp dir it would warn that its helpers could not be put on PATH.
    assert "Refusing to create helper binaries" not in (tmp_path / "codex-acp.stderr").read_text()
    return turn, server.requests


def patch_result(requests: list[Recorded]) -> str:
    _, second = requests
    (output,) = [i for i in second.body["input"] if i["type"] == "custom_tool_call_output"]
    return str(output["output"])


async def test_codex_writes_a_file_with_its_apply_patch_tool(
    tmp_path: Path, codex_home: Path
) -> None:
    turn, requests = await codex_turn(tmp_path, codex_home, mode="auto")
    assert turn.result.stop_reason == "end_turn"
    assert (tmp_path / "repo" / "hello.txt").read_text() == "hello from codex\n"
    assert "Success" in patch_result(requests)
    # In "auto" mode edits inside the workspace need no permission.
    assert turn.client.permissions == []
    (edit,) = turn.client.tool_calls()
    assert edit["kind"] == "edit"
    assert edit["content"][0]["path"] == str(tmp_path / "repo" / "hello.txt")


async def test_codex_in_read_only_mode_asks_and_a_rejection_cancels_the_turn(
    tmp_path: Path, codex_home: Path
) -> None:
    """Codex maps "reject" to aborting the turn: nothing written, the model not asked again."""
    turn, requests = await codex_turn(tmp_path, codex_home, mode="read-only", allow=False)
    assert not (tmp_path / "repo" / "hello.txt").exists()
    ((call, options),) = turn.client.permissions
    assert call.kind == "edit" and call.content is not None
    assert {o.kind for o in options} >= {"allow_once", "reject_once"}
    assert turn.result.stop_reason == "cancelled" and len(requests) == 1


# -- Gemini CLI ----------------------------------------------------------------------------


def gemini_script(repo: Path) -> Script[gemini_server.GeminiItem]:
    def script(body: Json) -> gemini_server.GeminiItem:
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":  # its model router
            routed = {"complexity_reasoning": "one small file", "complexity_score": 1}
            return gemini_server.Reply([gemini_server.text(json.dumps(routed))])
        parts = [p for c in body["contents"] for p in c.get("parts", [])]
        if answered(parts, "functionResponse"):
            return gemini_server.Reply([gemini_server.text("Created hello.txt.")])
        write = {"file_path": str(repo / "hello.txt"), "content": "hello from gemini\n"}
        return gemini_server.Reply([gemini_server.function_call("write_file", write)])

    return script


async def gemini_turn(tmp_path: Path, fs: FileSystemCapabilities) -> tuple[Turn, list[Recorded]]:
    agents = installed()
    repo = git_repo(tmp_path / "repo")
    async with gemini_server.GeminiServer(gemini_script(repo)) as server:
        # The gemini preset's own recipe: its settings in GEMINI_CLI_HOME, the key, the URL.
        made, _ = presets.PRESETS["gemini"].env(
            presets.ModelAccess(server.base_url, KEY, None, tmp_path)
        )
        env = agent_env(tmp_path, **made)
        turn = await one_turn("gemini --acp", agents.gemini, "--acp", env=env, repo=repo, fs=fs)
    assert turn.result.stop_reason == "end_turn"
    assert {(r.auth_style, r.api_key) for r in server.requests} == {("x-goog-api-key", KEY)}
    return turn, server.requests


def gemini_wrote(turn: Turn, requests: list[Recorded]) -> None:
    """The write went through: asked permission once, the model saw success."""
    ((call, options),) = turn.client.permissions
    assert call.kind == "edit" and {o.kind for o in options} >= {"allow_once", "reject_once"}
    main = [r for r in requests if r.path.endswith(":streamGenerateContent")]
    assert len(main) == 2
    tools = {f["name"] for t in main[0].body["tools"] for f in t.get("functionDeclarations", [])}
    assert {"write_file", "replace", "read_file", "run_shell_command"} <= tools
    (answer,) = [p["functionResponse"] for p in main[1].body["contents"][-1]["parts"]]
    assert answer["name"] == "write_file" and "output" in answer["response"]


async def test_gemini_writes_a_new_file_through_fs_write_when_reads_stay_its_own(
    tmp_path: Path,
) -> None:
    """Offering only ``fs.writeTextFile``: Gemini reads locally (a missing file is ENOENT)
    and sends the write to the client, which can confine it."""
    write_only = FileSystemCapabilities(read_text_file=False, write_text_file=True)
    turn, requests = await gemini_turn(tmp_path, write_only)
    repo = tmp_path / "repo"
    assert (repo / "hello.txt").read_text() == "hello from gemini\n"
    assert turn.client.writes == [str(repo / "hello.txt")] and turn.client.reads == []
    gemini_wrote(turn, requests)


async def test_gemini_writes_a_new_file_itself_when_offered_no_fs(tmp_path: Path) -> None:
    no_fs = FileSystemCapabilities(read_text_file=False, write_text_file=False)
    turn, requests = await gemini_turn(tmp_path, no_fs)
    assert (tmp_path / "repo" / "hello.txt").read_text() == "hello from gemini\n"
    assert turn.client.writes == turn.client.reads == []
    gemini_wrote(turn, requests)


async def test_gemini_cannot_create_a_file_when_the_client_serves_fs_read(
    tmp_path: Path,
) -> None:
    """The known snag, pinned so an upgrade that fixes it shows: Gemini reads the file
    before writing and treats only a Node ENOENT as "new file"; ACP's resource-not-found
    error reaches it as a plain object, so the write fails. Hence: never offer fs read."""
    both = FileSystemCapabilities(read_text_file=True, write_text_file=True)
    turn, _ = await gemini_turn(tmp_path, both)
    repo = tmp_path / "repo"
    assert not (repo / "hello.txt").exists()
    assert str(repo / "hello.txt") in turn.client.reads and turn.client.writes == []
    failed = [u for u in turn.client.updates if u.get("status") == "failed"]
    assert "Error checking existing file" in json.dumps(failed)


# -- Claude Code ---------------------------------------------------------------------------


def claude_script(repo: Path) -> Script[anthropic_server.AnthropicItem]:
    def script(body: Json) -> anthropic_server.AnthropicItem:
        blocks = [
            b for m in body["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        if answered(blocks, "tool_result"):
            return anthropic_server.Reply([anthropic_server.text("Created hello.txt.")])
        write = {"file_path": str(repo / "hello.txt"), "content": "hello from claude\n"}
        return anthropic_server.Reply([anthropic_server.tool_use("Write", write)], "tool_use")

    return script


async def test_claude_writes_a_file_with_its_write_tool(tmp_path: Path) -> None:
    agents = installed()
    repo = git_repo(tmp_path / "repo")
    async with anthropic_server.AnthropicServer(claude_script(repo)) as server:
        made, _ = presets.PRESETS["claude"].env(
            presets.ModelAccess(server.base_url, KEY, None, tmp_path)
        )
        env = agent_env(tmp_path, **made)
        both = FileSystemCapabilities(read_text_file=True, write_text_file=True)
        turn = await one_turn("claude-agent-acp", agents.claude, env=env, repo=repo, fs=both)
    assert (repo / "hello.txt").read_text() == "hello from claude\n"
    assert turn.result.stop_reason == "end_turn"
    messages = [r for r in server.requests if r.path == "/v1/messages"]
    assert len(messages) == 2 and all(r.body["stream"] is True for r in messages)
    assert {(r.auth_style, r.api_key) for r in messages} == {("x-api-key", KEY)}
    # Besides /v1/messages it only probes the base URL (HEAD /, unauthenticated).
    assert {(r.method, r.path) for r in server.requests} - {("POST", "/v1/messages")} <= {
        ("HEAD", "/")
    }
    assert "Write" in {t["name"] for t in messages[0].body["tools"]}
    # Asks before writing, then writes itself even though the client offers fs/*.
    ((call, _),) = turn.client.permissions
    assert call.kind == "edit"
    assert turn.client.writes == []
    usage = [u for u in turn.client.updates if u["session_update"] == "usage_update"]
    assert usage and usage[-1]["cost"]["currency"] == "USD"
