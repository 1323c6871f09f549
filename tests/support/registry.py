"""A package registry stand-in on loopback, as a private registry is: a PEP 503 "simple" index
serving wheels the test builds (pip installs from it with ``--index-url``/``PIP_INDEX_URL``),
counting what it served. Real pip speaks to it through the real egress proxy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web
from aiohttp.typedefs import Handler


def wheel(name: str, version: str, module_source: str) -> tuple[str, bytes]:
    """A pure-Python wheel with one module named like the project: (file name, bytes)."""
    module = name.replace("-", "_")
    dist = f"{module}-{version}"
    files = {
        f"{module}.py": module_source.encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: locus-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = (
        "\n".join([*record, f"{dist}.dist-info/RECORD,,"]) + "\n"
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{dist}-py3-none-any.whl", buffer.getvalue()


IMMUTABLE = {"Cache-Control": "max-age=365000000, immutable, public"}


class LoopbackSite:
    """An aiohttp site on 127.0.0.1 with the routes a subclass adds, for ``async with``."""

    port: int = 0
    #: Seconds each response waits, standing in for a registry across a network (benchmarks).
    delay: float = 0.0
    _runner: web.AppRunner | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    @web.middleware
    async def _delayed(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await handler(request)

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._delayed])
        self.routes(app.router)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@dataclass
class Registry(LoopbackSite):
    """``async with Registry({"project": (file, bytes)}) as r``: ``r.index_url`` to install from."""

    packages: dict[str, tuple[str, bytes]]
    served: list[str] = field(default_factory=list)

    @property
    def index_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    async def _project(self, request: web.Request) -> web.Response:
        found = self.packages.get(request.match_info["project"])
        if found is None:
            raise web.HTTPNotFound()
        file, data = found
        digest = hashlib.sha256(data).hexdigest()
        self.served.append(request.path)
        body = f'<html><body><a href="/files/{file}#sha256={digest}">{file}</a></body></html>'
        return web.Response(text=body, content_type="text/html")

    async def _file(self, request: web.Request) -> web.Response:
        for file, data in self.packages.values():
            if file == request.match_info["file"]:
                self.served.append(request.path)
                # As PyPI's files host says: a file never changes (what lets pip cache it).
                return web.Response(
                    body=data, content_type="application/octet-stream", headers=IMMUTABLE
                )
        raise web.HTTPNotFound()

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/simple/{project}/", self._project)
        router.add_get("/files/{file}", self._file)
