"""A fault-injecting TCP proxy: clients talk to the cloud through it, and some connections
break the way networks break — cut in the middle of the request (the server never sees all of
it), cut in the middle of the response (the server did the work, the client never hears of
it), delayed, or reset before anything passes.

Each accepted connection draws its fault from a seeded RNG, so the n-th connection of a run
always gets the same fault. Use one connection per request (aiohttp's ``force_close``) and
every request draws one. While the upstream is down (a killed cloud) connections are reset,
as a dead server's port would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

_CHUNK = 65536


class Kind(StrEnum):
    NONE = "none"
    DELAY = "delay"  # the request waits before it is forwarded
    CUT_REQUEST = "cut_request"  # part of the request's first bytes, then the connection dies
    CUT_RESPONSE = "cut_response"  # part of the response's first bytes, then it dies
    RESET = "reset"  # RST at once: nothing reaches the server


@dataclass(frozen=True)
class Fault:
    kind: Kind = Kind.NONE
    #: Where in the first chunk a cut falls, as a fraction of its length (0: nothing passes).
    fraction: float = 0.0
    delay: float = 0.0
    #: A cut ends with a reset (RST) rather than an orderly close (FIN).
    hard: bool = False


class FaultPlan:
    """The faults of a run: the same seed draws the same sequence."""

    def __init__(
        self, seed: int, rate: float, kinds: tuple[Kind, ...] = tuple(Kind)[1:], delay: float = 0.3
    ) -> None:
        self._rng = random.Random(seed)
        self.rate, self.kinds, self.max_delay = rate, kinds, delay

    def next(self) -> Fault:
        rng = self._rng
        faulty, kind = rng.random() < self.rate, rng.choice(self.kinds)
        fraction, delay, hard = rng.random(), rng.random() * self.max_delay, rng.random() < 0.5
        return Fault(kind, fraction, delay, hard) if faulty else Fault()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``upstream_port``. ``enabled`` off
    forwards everything untouched; ``injected`` counts the faults that actually fired."""

    def __init__(self, upstream_port: int, plan: FaultPlan) -> None:
        self.upstream_port, self.plan = upstream_port, plan
        self.enabled = False
        self.injected: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop accepting, and cut what is still open (its pumps then end by themselves)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            await self._serve(reader, writer, self.plan.next() if self.enabled else Fault())
        finally:
            self._open.discard(writer)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault
    ) -> None:
        if fault.kind is Kind.RESET:
            self.injected[fault.kind] += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError as exc:
            self.injected[f"upstream_down (errno {exc.errno})"] += 1
            _reset(writer)
            return
        self._open.add(up_writer)
        to_server = asyncio.create_task(self._pump(reader, up_writer, fault, upstream=True))
        to_client = asyncio.create_task(self._pump(up_reader, writer, fault, upstream=False))
        hard = False
        try:
            await asyncio.gather(to_server, to_client)
        except _Cut as cut:
            hard = cut.hard
        except OSError:
            pass
        finally:
            for pump in (to_server, to_client):
                pump.cancel()
            await asyncio.gather(to_server, to_client, return_exceptions=True)
            self._open.discard(up_writer)
            for w in (writer, up_writer):
                if hard:
                    _reset(w)
                else:
                    w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        fault: Fault,
        *,
        upstream: bool,
    ) -> None:
        first = True
        cut = Kind.CUT_REQUEST if upstream else Kind.CUT_RESPONSE
        while chunk := await reader.read(_CHUNK):
            if first and upstream and fault.kind is Kind.DELAY:
                self.injected[fault.kind] += 1
                await asyncio.sleep(fault.delay)
            if first and fault.kind is cut:
                self.injected[fault.kind] += 1
                writer.write(chunk[: int(fault.fraction * len(chunk))])
                await writer.drain()
                # The client side always dies; the server side sees the same close or reset.
                raise _Cut(fault.hard)
            first = False
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class _Cut(Exception):
    def __init__(self, hard: bool) -> None:
        super().__init__("cut")
        self.hard = hard
