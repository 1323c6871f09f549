"""pygls stays behind one module: upgrading it is one file's audit.

``locusd/server/pygls_adapter.py`` is the only module that imports pygls (or lsprotocol, its
type library) or touches pygls's internals: a private name pygls defines (``_request_futures``,
``_shutdown``, ``_converter``, ``_send_data``...) or one of the internals it exposes without
underscore (the feature manager's tables, ``get_message_type``, converter hooks). And the
modules the core imports do not load pygls at all.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pygls

ROOT = Path(__file__).resolve().parents[3]
ADAPTER = ROOT / "locusd" / "server" / "pygls_adapter.py"
BANNED_IMPORTS = ("pygls", "lsprotocol")
#: pygls internals without a leading underscore.
INTERNALS = {
    "fm",
    "builtin_features",
    "get_message_type",
    "handle_message",
    "register_structure_hook",
    "client_capabilities",
}


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Single-underscore names a module defines: functions, classes, assigned names and
    attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def pygls_private_names() -> set[str]:
    """Every private name the installed pygls defines."""
    names: set[str] = set()
    for path in Path(pygls.__file__).parent.rglob("*.py"):
        names |= _defined_private_names(ast.parse(path.read_text()))
    return names


def violations(path: Path, private: set[str]) -> Iterator[str]:
    """pygls imports and pygls internals used in one source file (``line: what``). A private
    name that the file's own code defines (``self._server = ...`` in ``LocusServer``) is its
    own."""
    tree = ast.parse(path.read_text(), str(path))
    suspect = (private - _defined_private_names(tree)) | INTERNALS
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                modules = [node.module] if node.module and node.level == 0 else []
            for module in modules:
                if module.split(".")[0] in BANNED_IMPORTS:
                    yield f"{node.lineno}: imports {module}"
        if isinstance(node, ast.Attribute) and node.attr in suspect:
            yield f"{node.lineno}: uses pygls's .{node.attr}"
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in suspect
        ):
            yield f"{node.lineno}: uses pygls's {node.args[1].value!r} via {node.func.id}"


def test_pygls_is_used_in_the_adapter_only() -> None:
    private = pygls_private_names()
    assert {"_request_futures", "_shutdown", "_converter", "_send_data"} <= private
    found = [
        f"{path.relative_to(ROOT)}:{problem}"
        for path in sorted((ROOT / "locusd").rglob("*.py"))
        if path != ADAPTER
        for problem in violations(path, private)
    ]
    assert found == [], "pygls belongs in locusd/server/pygls_adapter.py only:\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The checker itself: each kind of use is reported, a file's own private attribute is
    not."""
    path = tmp_path / "sample.py"
    path.write_text(
        "import pygls.server\n"
        "from lsprotocol import types\n"
        "class Mine:\n"
        "    def __init__(self) -> None:\n"
        "        self._server = 1\n"
        "    def use(self, proto: object) -> None:\n"
        "        proto._request_futures.clear()\n"
        "        getattr(proto, '_shutdown')\n"
        "        print(proto.fm.builtin_features, self._server, proto._converter)\n"
    )
    assert sorted(violations(path, pygls_private_names())) == [
        "1: imports pygls.server",
        "2: imports lsprotocol",
        "7: uses pygls's ._request_futures",
        "8: uses pygls's '_shutdown' via getattr",
        "9: uses pygls's ._converter",
        "9: uses pygls's .builtin_features",
        "9: uses pygls's .fm",
    ]


def test_the_core_side_does_not_load_pygls() -> None:
    """The core imports the peer interfaces and ``@handles``; neither may pull pygls in (the
    forwarder and the CLI import them too, and pygls costs start-up time)."""
    modules = ["locusd.server.peer", "locusd.server.handlers", "locusd.server.gates"]
    code = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pygls', 'lsprotocol')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
