"""The protocol server through real clients over the real socket: pygls's stock
LanguageClient (as an editor extension would use it), with the demo core behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from locusd.protocol import METHODS, PROTOCOL_VERSION
from locusd.protocol.errors import Code
from locusd.protocol.messages import ApprovalAnswer, ApprovalRequest
from locusd.server.connection import Connection, PeerRequestError
from tests.locusd.server.support import TIMEOUT, init_options, lsp_client, on, running_server

pytestmark = pytest.mark.timeout(60)


async def test_initialize_then_methods() -> None:
    async with running_server() as (_server, core, path), lsp_client(path) as lsp:
        result = await lsp.initialize(name="vscode")
        assert result.capabilities.experimental == {
            "locus": {
                "protocolVersion": PROTOCOL_VERSION,
                "daemonVersion": "0.0-demo",
                "features": ["demo"],
            }
        }
        assert result.server_info is not None and result.server_info.name == "locusd"

        status = await lsp.call("locus/daemon/status", {})
        assert status.clients == 1 and status.protocolVersion == PROTOCOL_VERSION
        assert [peer.client.name for peer in core.peers if peer.client] == ["vscode"]

        runs = await lsp.call("locus/runs/list")  # params omitted: same as {}
        assert runs.runs[0].title == "démo ✓ — non-ASCII on purpose"  # byte-exact framing

        shown = await lsp.call("locus/runs/show", {"runId": "r1", "unknownField": [1]})
        assert shown.runId == "r1"


async def test_errors_name_what_was_wrong() -> None:
    async with running_server() as (_server, _core, path), lsp_client(path) as lsp:
        await lsp.initialize()

        with pytest.raises(JsonRpcException) as missing:
            await lsp.call("locus/runs/show", {})
        assert missing.value.code == -32602
        assert "runId is required" in missing.value.message
        assert "{runId: string}" in missing.value.message  # the fix: what to send
        assert missing.value.data == {"kind": "invalid_params", "retryable": False}

        with pytest.raises(JsonRpcException) as wrong_type:
            await lsp.call("locus/runs/logs", {"runId": "r1", "after": -1})
        assert wrong_type.value.code == -32602 and "after:" in wrong_type.value.message

        with pytest.raises(JsonRpcException) as not_object:
            await lsp.call("locus/runs/show", ["r1"])
        assert not_object.value.code == -32602 and "JSON object" in not_object.value.message

        with pytest.raises(JsonRpcException) as locus_error:
            await lsp.call("locus/runs/show", {"runId": "nope"})
        assert locus_error.value.code == Code.RUN_NOT_FOUND
        assert locus_error.value.data == {"kind": "run_not_found", "retryable": False}

        with pytest.raises(JsonRpcException) as unknown:
            await lsp.call("locus/nope", {})
        assert unknown.value.code == -32601 and "locus/nope" in unknown.value.message

        with pytest.raises(JsonRpcException) as unimplemented:
            await lsp.call("locus/auth/status", {})  # in METHODS, not in the demo core
        assert unimplemented.value.code == -32601

        with pytest.raises(JsonRpcException) as crash:
            await lsp.call("locus/tasks/list", {})
        assert crash.value.code == -32603
        assert "RuntimeError: the demo core has no cloud" in crash.value.message
        assert "Traceback" not in str(crash.value.data)

        with pytest.raises(JsonRpcException) as bad_result:
            await lsp.call("locus/runs/cancel", {"runId": "r1"})
        assert bad_result.value.code == -32603

        # still serving
        assert (await lsp.call("locus/daemon/status", {})).clients == 1


async def test_requests_before_initialize_are_refused() -> None:
    async with running_server() as (_server, core, path), lsp_client(path) as lsp:
        with pytest.raises(JsonRpcException) as refused:
            await lsp.call("locus/daemon/status", {})
        assert refused.value.code == -32002
        assert "initialize first" in refused.value.message
        assert core.peers == []
        await lsp.initialize()
        assert (await lsp.call("locus/daemon/status", {})).clients == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (init_options(version="2.0"), "2.0"),
        (init_options(version="0.9"), "0.9"),
        ({}, "missing"),
        (None, "missing"),
    ],
)
async def test_protocol_version_mismatch(options: Any, named: str) -> None:
    async with running_server() as (_server, core, path), lsp_client(path) as lsp:
        params = types.InitializeParams(
            process_id=None, capabilities=types.ClientCapabilities(), initialization_options=options
        )
        with pytest.raises(JsonRpcException) as refused:
            await asyncio.wait_for(lsp.client.initialize_async(params), TIMEOUT)
        assert refused.value.code == Code.UNSUPPORTED_PROTOCOL
        assert named in refused.value.message and PROTOCOL_VERSION in refused.value.message
        data = refused.value.data
        assert isinstance(data, dict)
        assert data["kind"] == "unsupported_protocol" and data["retryable"] is False
        assert data["daemonProtocolVersion"] == PROTOCOL_VERSION
        assert core.peers == []
        # the client may try again with a version the daemon speaks
        await lsp.initialize()
        assert len(core.peers) == 1


async def test_bad_init_options_are_invalid_params() -> None:
    async with running_server() as (_server, _core, path), lsp_client(path) as lsp:
        options = {"locus": {"protocolVersion": PROTOCOL_VERSION}}  # no client
        with pytest.raises(JsonRpcException) as refused:
            await lsp.initialize(options=options)
        assert refused.value.code == -32602
        assert "initializationOptions.locus.client" in refused.value.message


async def test_shutdown_exit_closes_only_that_client() -> None:
    async with (
        running_server() as (server, core, path),
        lsp_client(path) as first,
        lsp_client(path) as second,
    ):
        await first.initialize(name="first")
        await second.initialize(name="second")
        assert (await second.call("locus/daemon/status", {})).clients == 2

        await asyncio.wait_for(first.client.shutdown_async(None), TIMEOUT)
        with pytest.raises(JsonRpcException) as after_shutdown:
            await first.call("locus/daemon/status", {})
        assert after_shutdown.value.code == -32600
        first.client.exit(None)
        await first.closed()  # the daemon closed that connection...
        await asyncio.wait_for(core.disconnected_event.wait(), TIMEOUT)

        status = await second.call("locus/daemon/status", {})  # ...and serves the other one
        assert status.clients == 1
        assert [peer.client.name for peer in core.gone if peer.client] == ["first"]
        assert len(server.connections) == 1


async def test_client_disconnecting_mid_request() -> None:
    async with running_server() as (_server, core, path):
        async with lsp_client(path) as quitter:
            await quitter.initialize()
            pending = asyncio.ensure_future(quitter.call("locus/runs/logs", {"runId": "slow"}))
            await asyncio.wait_for(core.slow_started.wait(), TIMEOUT)
            quitter.writer.transport.abort()  # gone without shutdown/exit
            await asyncio.wait_for(core.disconnected_event.wait(), TIMEOUT)
        pending.cancel()
        core.slow_release.set()  # the handler finishes; its answer has nowhere to go
        await asyncio.wait_for(core.slow_finished.wait(), TIMEOUT)

        async with lsp_client(path) as newcomer:
            await newcomer.initialize()
            assert (await newcomer.call("locus/daemon/status", {})).clients == 1


async def test_cancel_request() -> None:
    async with running_server() as (_server, core, path), lsp_client(path) as lsp:
        await lsp.initialize()
        future = lsp.client.protocol.send_request_async(
            "locus/runs/logs", {"runId": "slow"}, msg_id=77
        )
        await asyncio.wait_for(core.slow_started.wait(), TIMEOUT)
        lsp.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=77))
        with pytest.raises(JsonRpcException) as cancelled:
            await asyncio.wait_for(future, TIMEOUT)
        assert cancelled.value.code == -32800
        assert not core.slow_finished.is_set()


async def test_notifications_reach_the_subscriber() -> None:
    async with running_server() as (_server, _core, path), lsp_client(path) as lsp:
        events: asyncio.Queue[Any] = asyncio.Queue()

        def on_event(params: Any) -> None:
            events.put_nowait(params)

        on(lsp.client, "locus/runs/event", on_event)
        await lsp.initialize()
        answer = await lsp.call("locus/runs/subscribe", {"runId": "r1"})
        assert [event.seq for event in answer.events] == [1]
        pushed = await asyncio.wait_for(events.get(), TIMEOUT)
        assert (pushed.runId, pushed.seq, pushed.text) == ("r1", 2, "héllo ✓")


async def test_daemon_to_client_request_is_answered() -> None:
    async with running_server() as (_server, _core, path), lsp_client(path) as lsp:
        asked: list[Any] = []

        def approve(params: Any) -> dict[str, str]:
            asked.append(params)
            return {"decision": "allow_once"}

        on(lsp.client, "locus/approval", approve)
        await lsp.initialize()
        run = await lsp.call("locus/runs/start", {"repo": "/tmp/repo", "task": "rm -rf build/"})
        assert run.outcome == "allow_once"
        assert [(a.approvalId, a.command) for a in asked] == [("a1", "rm -rf build/")]


async def test_daemon_to_client_request_errors() -> None:
    request = ApprovalRequest(approval_id="a", run_id="r1", command="make", reason="why")
    async with running_server() as (server, _core, path), lsp_client(path) as lsp:

        def approve(params: Any) -> dict[str, str]:
            return {"decision": "maybe"}  # not a Decision

        on(lsp.client, "locus/approval", approve)
        await lsp.initialize()
        (connection,) = server.connections
        with pytest.raises(PeerRequestError, match="is not"):
            await asyncio.wait_for(
                connection.request("locus/approval", request, ApprovalAnswer), TIMEOUT
            )

    async with running_server() as (server, _core, path), lsp_client(path) as silent:
        await silent.initialize()  # registers no locus/approval handler: pygls answers -32601
        (connection,) = server.connections
        with pytest.raises(PeerRequestError):
            await asyncio.wait_for(
                connection.request("locus/approval", request, ApprovalAnswer), TIMEOUT
            )

        ask = asyncio.ensure_future(
            connection.request("locus/client/never", request, ApprovalAnswer)
        )
        silent.writer.transport.abort()
        with pytest.raises((ConnectionError, PeerRequestError)):
            await asyncio.wait_for(ask, TIMEOUT)
        await asyncio.wait_for(connection.finished.wait(), TIMEOUT)
        with pytest.raises(ConnectionError):
            await connection.request("locus/approval", request, ApprovalAnswer)
        connection.notify("locus/runs/event", request)  # dropped silently


async def test_work_done_progress() -> None:
    async with running_server() as (_server, _core, path), lsp_client(path) as lsp:
        created: list[Any] = []
        progress: asyncio.Queue[Any] = asyncio.Queue()

        def create(params: types.WorkDoneProgressCreateParams) -> None:
            created.append(params.token)

        def on_progress(params: types.ProgressParams) -> None:
            progress.put_nowait(params)

        on(lsp.client, types.WINDOW_WORK_DONE_PROGRESS_CREATE, create)
        on(lsp.client, types.PROGRESS, on_progress)
        await lsp.initialize(progress=True)
        await lsp.call("locus/runs/unsubscribe", {"runId": "r1"})
        assert created == ["p1"]
        begin = await asyncio.wait_for(progress.get(), TIMEOUT)
        end = await asyncio.wait_for(progress.get(), TIMEOUT)
        assert begin.token == "p1" and begin.value["kind"] == "begin"
        assert end.value["kind"] == "end"

    async with running_server() as (_server, _core, path), lsp_client(path) as plain:
        await plain.initialize(progress=False)  # LSP: no window/workDoneProgress/create then
        assert await plain.call("locus/runs/unsubscribe", {"runId": "r1"}) is not None


async def test_every_method_has_a_handler() -> None:
    async with running_server() as (server, _core, path), lsp_client(path) as lsp:
        await lsp.initialize()
        (connection,) = server.connections
        assert isinstance(connection, Connection)
        assert set(METHODS) <= set(connection.protocol.fm.features)


async def test_daemon_shutdown_method_sets_stopping() -> None:
    async with running_server() as (_server, core, path), lsp_client(path) as lsp:
        await lsp.initialize()
        await lsp.call("locus/daemon/shutdown", {})
        assert core.stopping.is_set()


async def test_a_client_that_stops_reading_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events for a client that never reads pile up in the daemon's memory only up to a bound."""
    from locusd.protocol.messages import RunEvent
    from locusd.server import connection as module

    monkeypatch.setattr(module, "MAX_WRITE_BUFFER", 1 << 20)
    async with running_server() as (server, core, path), lsp_client(path) as lsp:
        await lsp.initialize()
        (connection,) = server.connections
        transport = lsp.writer.transport
        assert isinstance(transport, asyncio.ReadTransport)
        transport.pause_reading()  # the client stops reading
        big = RunEvent(run_id="r1", seq=1, kind="output", text="x" * 65536)
        for _ in range(100):
            if connection.closing:
                break
            connection.notify("locus/runs/event", big)
            await asyncio.sleep(0)  # let the transport try to write, as a busy daemon would
        assert connection.closing
        await asyncio.wait_for(core.disconnected_event.wait(), TIMEOUT)
