"""The relay inside the sandbox: the command's only way to the network.

    python3 -I -S bridge.py SOCKET PROXY_PORT [LOOPBACK_PORT ...] -- COMMAND ...

Run by the sandbox in the command's network namespace (where only a loopback exists), it listens
on ``127.0.0.1:PROXY_PORT`` and relays each connection to the egress proxy's UNIX ``SOCKET``
(bound into the sandbox), then runs ``COMMAND`` with ``HTTP_PROXY``/``HTTPS_PROXY`` pointing at
it, and exits with the command's status. For each ``LOOPBACK_PORT`` a rule allows on the host's
loopback (a registry on ``localhost:4873``) it listens on that port too and asks the proxy for
``CONNECT 127.0.0.1:PORT``: the command reaches it as it would outside.

It decides nothing: the proxy, outside, judges every connection, so a command that kills or
replaces this relay gains no way out. Standard library only, and no import of Locus: the
sandbox runs it by path, with the interpreter alone (``-I -S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable

CHUNK = 64 * 1024
LOCAL = "localhost,127.0.0.1,::1"


def _uncounted(size: int) -> None:
    pass


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    count: Callable[[int], None] = _uncounted,
) -> None:
    """Copy until the end, then half-close; the proxy (outside) counts the bytes."""
    try:
        while chunk := await reader.read(CHUNK):
            count(len(chunk))
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _relay(
    socket_path: str,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    loopback_port: int | None,
) -> None:
    try:
        up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        writer.close()
        return
    try:
        if loopback_port is not None:
            target = f"127.0.0.1:{loopback_port}"
            up_writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            answer = await up_reader.readuntil(b"\r\n\r\n")
            if answer.split(b" ", 2)[1:2] != [b"200"]:
                return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        up_writer.close()
        writer.close()


async def main(argv: list[str]) -> int:
    split = argv.index("--")
    socket_path, proxy_port, *loopback = argv[:split]
    command = argv[split + 1 :]
    servers = []
    for port, target in ((int(proxy_port), None), *((int(p), int(p)) for p in loopback)):
        relay = functools.partial(_relay, socket_path, loopback_port=target)
        servers.append(await asyncio.start_server(relay, "127.0.0.1", port))
    proxy = f"http://127.0.0.1:{proxy_port}"
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = proxy
    env["NO_PROXY"] = env["no_proxy"] = LOCAL
    child = await asyncio.create_subprocess_exec(*command, env=env)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, child.send_signal, sig)
    status = await child.wait()
    for server in servers:
        server.close()
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
