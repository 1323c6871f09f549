"""``locusd``: the daemon (``locusd serve``), its stdio forwarder (``locusd --stdio``) and its
ACP face (``locusd acp``, docs/acp.md).

``serve`` runs in the foreground (systemd, launchd, or spawned detached by a forwarder) until
``locus/daemon/shutdown``, SIGTERM or SIGINT. ``--stdio`` is what an editor configures as its
"language server command": it connects to the user's daemon, starting it if none runs, and
pipes bytes both ways, so every editor window shares one daemon.

The forwarder path imports nothing heavy (no pygls, no core): an editor spawns it often.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

from locusd import __version__
from locusd.server.paths import SocketDirError, socket_path
from locusd.server.peer import Core

DEFAULT_CORE = "locusd.daemon:create_core"


class DaemonCore(Core, Protocol):
    """What ``serve`` needs of the core beyond :class:`Core`: when to stop, how to close."""

    stopping: asyncio.Event

    async def close(self) -> None: ...


CoreFactory = Callable[..., DaemonCore]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="locusd",
        description="The Locus daemon: 'locusd serve' runs it, 'locusd --stdio' connects an"
        " editor to it (starting it if needed).",
    )
    parser.add_argument("--version", action="version", version=f"locusd {__version__}")
    parser.add_argument(
        "--stdio",
        action="store_true",
        help="forward stdin/stdout to the daemon's socket, starting the daemon if none runs",
    )
    parser.add_argument("--socket", type=Path, help="the socket (default: see docs/protocol.md)")
    parser.add_argument(
        "--no-start", action="store_true", help="with --stdio: fail instead of starting a daemon"
    )
    parser.add_argument(
        "--serve-command",
        help="with --stdio: how to start the daemon (default: $LOCUSD_SERVE_COMMAND, else"
        " this Python running 'locusd serve')",
    )
    parser.add_argument(
        "--clientProcessId", help=argparse.SUPPRESS
    )  # passed by some editors; the daemon outlives any one client, so it is ignored
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the daemon in the foreground")
    serve.add_argument("--socket", type=Path, dest="serve_socket", help="where to listen")
    serve.add_argument(
        "--core",
        default=DEFAULT_CORE,
        help="MODULE:FACTORY building the daemon core (for tests and embedding)",
    )
    serve.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    agent = commands.add_parser(
        "acp", help="serve the Agent Client Protocol on stdio (for ACP editors: docs/acp.md)"
    )
    agent.add_argument("--socket", type=Path, dest="acp_socket", help="the daemon's socket")
    agent.add_argument(
        "--unstable", action="store_true", help="also offer ACP's draft (unstable) methods"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``locusd`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.stdio:
            parser.error("--stdio and serve are exclusive")
        path = args.serve_socket or args.socket or socket_path()
        return serve(path, core=args.core, log_level=args.log_level)
    if args.command == "acp":
        import shlex

        from locusd.acp.main import acp

        command = shlex.split(args.serve_command) if args.serve_command else None
        socket = args.acp_socket or args.socket
        return acp(socket, start=not args.no_start, serve_command=command, unstable=args.unstable)
    if args.stdio:
        return stdio(args.socket, start=not args.no_start, serve_command=args.serve_command)
    parser.print_help(sys.stderr)
    return 2


def stdio(path: Path | None, *, start: bool = True, serve_command: str | None = None) -> int:
    """``locusd --stdio``: connect (or start and connect), then forward until either side
    closes. Errors go to stderr, which editors show in their output panel."""
    import shlex

    from locusd.server.client import DaemonUnavailable, connect_or_start_socket, forward_stdio

    try:
        sock = connect_or_start_socket(
            path,
            start=start,
            serve_command=shlex.split(serve_command) if serve_command else None,
        )
    except DaemonUnavailable as exc:
        print(f"locusd --stdio: {exc}", file=sys.stderr)
        return 1
    return forward_stdio(sock)


def load_factory(spec: str) -> CoreFactory:
    """``module:function`` → the function (imported lazily: the default core pulls in the
    whole runtime)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--core {spec!r}: expected MODULE:FUNCTION")
    module = importlib.import_module(module_name)
    return cast(CoreFactory, getattr(module, attribute))


def serve(path: Path, *, core: str = DEFAULT_CORE, log_level: str = "INFO") -> int:
    """``locusd serve``: claim the socket, build the core, serve until told to stop."""
    logging.basicConfig(
        stream=sys.stderr,
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from locusd.config import ConfigError
    from locusd.server.pygls_adapter import log  # also quiets the pygls logger

    try:
        return asyncio.run(_serve(path, core))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:  # the user's file: its line or key, no traceback
        print(f"locusd serve: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from locusd.config import ConfigError

        if not isinstance(exc, ConfigError):  # the user's file: its message, no traceback
            log.exception("the daemon failed")
        print(f"locusd serve: {exc}", file=sys.stderr)
        return 1


async def _serve(path: Path, core_spec: str) -> int:
    from locusd.server.handlers import HandlerBindingError
    from locusd.server.server import DaemonAlreadyRunning, LocusServer

    log = logging.getLogger("locusd.server")
    server = LocusServer(path)
    try:
        server.claim()  # before the core: its crash recovery must not race a live daemon
    except (SocketDirError, DaemonAlreadyRunning) as exc:
        print(f"locusd serve: {exc}", file=sys.stderr)
        return 1
    try:
        core = load_factory(core_spec)(socket_path=path)
    except BaseException:
        await server.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        try:
            await server.listen(core)
        except HandlerBindingError as exc:  # a core that cannot answer the protocol
            print(f"locusd serve: {exc}", file=sys.stderr)
            return 1
        # Everything imported so far lives as long as the daemon: keep it out of the garbage
        # collector's full passes, which otherwise pause every request for ~100 ms.
        gc.freeze()
        log.info("locusd %s serving (pid %d)", __version__, os.getpid())
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(core.stopping.wait())]
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        log.info("stopping")
    finally:
        await server.close()
        await core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
