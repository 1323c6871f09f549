"""An npm registry stand-in on loopback, as a private registry (Verdaccio, Nexus) is: a
packument per package and its tarballs, built by the test, counting what it served. npm
installs from it with ``npm_config_registry``; real npm speaks to it through the egress proxy."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.registry import LoopbackSite

FRESH_FOR_5_MINUTES = {"Cache-Control": "public, max-age=300"}


def tarball(name: str, version: str, index_js: str) -> bytes:
    """A package's ``.tgz`` as ``npm pack`` makes it: ``package/package.json`` and the code."""
    manifest = {"name": name, "version": version, "main": "index.js"}
    files = {"package/package.json": json.dumps(manifest), "package/index.js": index_js}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@dataclass
class NpmRegistry(LoopbackSite):
    """``async with NpmRegistry({"name": ("1.0.0", tgz)}) as r``: ``r.url`` to install from."""

    packages: dict[str, tuple[str, bytes]]
    served: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def tarballs_served(self) -> list[str]:
        return [path for path in self.served if path.endswith(".tgz")]

    def _packument(self, name: str) -> dict[str, Any]:
        version, data = self.packages[name]
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        dist = {
            "tarball": f"{self.url}{name}/-/{name}-{version}.tgz",
            "shasum": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            "integrity": integrity,
        }
        return {
            "name": name,
            "dist-tags": {"latest": version},
            "versions": {version: {"name": name, "version": version, "dist": dist}},
        }

    async def _package(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.packages:
            raise web.HTTPNotFound()
        self.served.append(request.path)
        # As registry.npmjs.org says: a packument may be reused for five minutes.
        return web.json_response(self._packument(name), headers=FRESH_FOR_5_MINUTES)

    async def _tarball(self, request: web.Request) -> web.Response:
        name, file = request.match_info["name"], request.match_info["file"]
        found = self.packages.get(name)
        if found is None or file != f"{name}-{found[0]}.tgz":
            raise web.HTTPNotFound()
        self.served.append(request.path)
        return web.Response(body=found[1], content_type="application/octet-stream")

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{name}", self._package)
        router.add_get("/{name}/-/{file}", self._tarball)
