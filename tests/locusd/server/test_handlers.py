"""``@handles``: every method of the table has exactly one handler on the core, and no handler
names a method that does not exist; a core that breaks this is refused at start-up, with a
message naming each method, before anything listens."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from locusd.daemon import Daemon
from locusd.protocol import METHODS
from locusd.protocol.base import Empty
from locusd.protocol.messages import Run, RunList, RunRef
from locusd.server.handlers import HandlerBindingError, handler_table, handles
from locusd.server.main import main
from locusd.server.peer import Peer
from locusd.server.server import LocusServer
from tests.locusd.server.democore import RUN, DemoCore
from tests.support.shortpath import short_tmp

pytestmark = pytest.mark.timeout(60)


class LostDecorator(DemoCore):
    """Overrides a handler and forgets ``@handles``: the method has no handler any more."""

    async def runs_list(self, params: Empty, peer: Peer) -> RunList:
        return RunList(runs=[])


class UnknownMethod(DemoCore):
    @handles("locus/runs/rename")
    async def runs_rename(self, params: RunRef, peer: Peer) -> Run:
        return RUN


class TwoHandlers(DemoCore):
    @handles("locus/runs/show")
    async def show_again(self, params: RunRef, peer: Peer) -> Run:
        return RUN


def lost_decorator_core(config: object = None, *, socket_path: Path | None = None) -> DemoCore:
    """For ``locusd serve --core``."""
    return LostDecorator(socket_path)


@pytest.mark.parametrize("core", [Daemon, DemoCore])
def test_every_method_has_one_handler(core: type) -> None:
    table = handler_table(core)
    assert set(table) == set(METHODS)
    for method, attribute in table.items():
        assert inspect.iscoroutinefunction(getattr(core, attribute)), method


def test_the_daemon_binds_each_method_where_it_is_written() -> None:
    """``grep 'locus/runs/start'`` finds the handler: the decorator is right above it."""
    source = inspect.getsource(Daemon.runs_start)
    assert source.lstrip().startswith('@handles("locus/runs/start")\n')


@pytest.mark.parametrize(
    ("core", "expected"),
    [
        (
            LostDecorator,
            "locus/runs/list has no handler: decorate the LostDecorator coroutine that"
            " answers it with @handles('locus/runs/list')",
        ),
        (
            UnknownMethod,
            "UnknownMethod.runs_rename handles 'locus/runs/rename', which is not a method of"
            " the protocol",
        ),
        (
            TwoHandlers,
            "locus/runs/show has 2 handlers (TwoHandlers.show_again, TwoHandlers.runs_show):"
            " keep one",
        ),
    ],
)
async def test_a_core_that_does_not_match_the_table_is_refused_at_start_up(
    core: type[DemoCore], expected: str
) -> None:
    with short_tmp() as tmp:
        path = tmp / "run" / "locusd.sock"
        server = LocusServer(path)
        with pytest.raises(HandlerBindingError) as refused:
            await server.start(core(path))
        assert expected in str(refused.value)
        assert not path.exists()  # nothing listened
        LocusServer(path).claim()  # and the lock was released


def test_locusd_serve_says_which_method_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    with short_tmp() as tmp:
        core = f"{__name__}:lost_decorator_core"
        assert main(["serve", "--socket", str(tmp / "run" / "s.sock"), "--core", core]) == 1
        err = capsys.readouterr().err
        assert "locusd serve: LostDecorator cannot serve the protocol:" in err
        assert "locus/runs/list has no handler" in err
        assert "Traceback" not in err


def test_handles_wants_a_method_and_a_coroutine() -> None:
    with pytest.raises(TypeError, match="needs the name of the method"):
        handles()

    def sync(self: Any, params: Any, peer: Any) -> None: ...

    with pytest.raises(TypeError, match="is not async"):
        handles("locus/runs/list")(sync)  # type: ignore[type-var]  # the mistake under test
