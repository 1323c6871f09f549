"""A listening socket that counts the connections it accepts (and closes each at once): the
canary host a sandboxed command must never reach, or a stand-in for a container engine's
socket."""

from __future__ import annotations

import socket
import threading


class CountingListener:
    def __init__(self, server: socket.socket) -> None:
        """``server``: bound; listened on and served here, closed by :meth:`close`."""
        self._server = server
        self._server.listen()
        self._server.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()
