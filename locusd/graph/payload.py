"""The index as the cloud's :class:`~cloud_api.schemas.graph.GraphUpsert`, and its exact bytes.

Deterministic (same index and history → same bytes) and at most ``limit`` bytes (512 KB by
default) and the schema's node/edge caps. What is kept is decided in this order, and when the
budget runs out everything after that point is dropped — so what goes first is what is least
useful:

1. the summary: languages, manifests, dependency names, commands (and their edges);
2. modules, the largest first;
3. finished tasks (newest first) with the files their accepted patch touched;
4. co-change pairs, the strongest first (with their two files);
5. files that changed, the most often (then most recently) changed first;
6. cold files (no recorded change), in path order.

History (co-change, per-path changes, tasks' files) comes from :class:`HistoryStats`, filled by
the git-history reader; an empty one gives the structure alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud_api.schemas.graph import GraphUpsert, NodeIn
from locusd.graph.structure import Structure, language, module

DEFAULT_LIMIT = 512 * 1024
#: The schema's caps for one upload (cloud_api/schemas/graph.py).
MAX_NODES, MAX_EDGES = 5000, 20000
_EMPTY = len(GraphUpsert().model_dump_json())  # {"nodes":[],"edges":[]}


@dataclass(frozen=True)
class PathHistory:
    changes: int
    last_change: datetime


@dataclass(frozen=True)
class HistoryStats:
    """What the history reader hands over; empty until it does. Paths must be paths of the
    index (others are ignored: an ignored or deleted path never joins the payload)."""

    co_change: Mapping[tuple[str, str], int] = field(default_factory=dict)
    paths: Mapping[str, PathHistory] = field(default_factory=dict)
    #: task id → the files its accepted patch touched
    tasks: Mapping[int, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Payload:
    upsert: GraphUpsert
    body: bytes
    dropped_nodes: int
    dropped_edges: int


Node = dict[str, Any]  # {"kind", "key", "attrs"}: NodeIn's fields, in its order
Edge = dict[str, Any]  # {"src", "dst", "kind", "weight"}: EdgeIn's fields


@dataclass
class _Group:
    """Nodes and edges kept or dropped together (an edge needs its ends). Plain dicts: only
    what is kept becomes a pydantic model (a 50k-file repository has 50k candidates)."""

    nodes: list[Node]
    edges: list[Edge] = field(default_factory=list)


def build_payload(
    structure: Structure, history: HistoryStats | None = None, *, limit: int = DEFAULT_LIMIT
) -> Payload:
    """The upload for ``structure`` and ``history``, cut to ``limit`` bytes (see the module
    docstring for what is dropped first)."""
    history = history or HistoryStats()
    nodes: dict[tuple[str, str], Node] = {}
    edges: list[Edge] = []
    size, dropped_nodes, dropped_edges, full = _EMPTY, 0, 0, False
    for group in _groups(structure, history):
        new = list({(n["kind"], n["key"]): n for n in group.nodes
                    if (n["kind"], n["key"]) not in nodes}.values())  # fmt: skip
        if not full:
            cost = sum(map(_cost, new)) + sum(map(_cost, group.edges))
            full = (
                size + cost > limit
                or len(nodes) + len(new) > MAX_NODES
                or len(edges) + len(group.edges) > MAX_EDGES
            )
        if full:
            dropped_nodes += len(new)
            dropped_edges += len(group.edges)
            continue
        size += cost
        nodes.update(((n["kind"], n["key"]), n) for n in new)
        edges += group.edges
    upsert = GraphUpsert.model_validate({"nodes": list(nodes.values()), "edges": edges})
    body = upsert.model_dump_json().encode("utf-8")
    return Payload(upsert, body, dropped_nodes, dropped_edges)


def _cost(item: Node | Edge) -> int:
    """Its bytes in the body (as pydantic writes it: compact, UTF-8), and its comma."""
    return len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()) + 1


def _node(kind: str, key: str, attrs: dict[str, Any] | None = None) -> Node:
    return {"kind": kind, "key": key, "attrs": attrs or {}}


def _ref(kind: str, key: str) -> dict[str, str]:
    return {"kind": kind, "key": key}


def _edge(src: dict[str, str], dst: dict[str, str], kind: str, weight: int | None = None) -> Edge:
    """With ``weight`` even when None: the body carries ``"weight":null`` and its bytes count."""
    return {"src": src, "dst": dst, "kind": kind, "weight": weight}


def _file(path: str, history: HistoryStats) -> Node:
    attrs: dict[str, Any] = {}
    if lang := language(path):
        attrs["language"] = lang
    if mod := module(path):
        attrs["module"] = mod
    if seen := history.paths.get(path):
        attrs["changes"] = seen.changes
        attrs["last_change"] = seen.last_change.isoformat()
    return _node("file", path, attrs)


def _groups(structure: Structure, history: HistoryStats) -> Iterator[_Group]:
    yield _summary(structure)
    for name, count in structure.modules.items():
        yield _Group([_node("module", name, {"files": count})])
    known = set(structure.paths)
    for task, touched in sorted(history.tasks.items(), reverse=True):
        files = sorted(p for p in set(touched) if p in known)
        ref = _ref("task", str(task))
        yield _Group(
            [_node("task", str(task)), *(_file(p, history) for p in files)],
            [_edge(ref, _ref("file", p), "touched") for p in files],
        )
    pairs = {tuple(sorted(pair)): n for pair, n in history.co_change.items()}
    for (a, b), weight in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])):
        if a != b and a in known and b in known:
            edge = _edge(_ref("file", a), _ref("file", b), "co_change", weight)
            yield _Group([_file(a, history), _file(b, history)], [edge])
    changed = sorted(
        (p for p in history.paths if p in known),
        key=lambda p: (-history.paths[p].changes, -history.paths[p].last_change.timestamp(), p),
    )
    for path in changed:
        yield _Group([_file(path, history)])
    for path in structure.paths:
        if path not in history.paths:
            yield _Group([_file(path, history)])


def _summary(structure: Structure) -> _Group:
    group = _Group([_node("language", k, {"files": n}) for k, n in structure.languages.items()])
    for manifest in structure.manifests:
        src = _ref("manifest", manifest.path)
        group.nodes.append(_node("manifest", manifest.path, {"ecosystem": manifest.ecosystem}))
        for dep_group, names in sorted(manifest.dependencies.items()):
            for name in names:
                key = f"{manifest.ecosystem}:{name}"
                group.nodes.append(_node("dependency", key, {"ecosystem": manifest.ecosystem}))
                group.edges.append(_edge(src, _ref("dependency", key), dep_group))
        for command in manifest.commands:
            group.nodes.append(_node("command", command))
            group.edges.append(_edge(src, _ref("command", command), "implies"))
    return group


def summary_lines(payload: Payload) -> list[str]:
    """A readable account of ``payload`` for ``locus graph show``."""
    by_kind: dict[str, list[NodeIn]] = {}
    for node in payload.upsert.nodes:
        by_kind.setdefault(node.kind, []).append(node)
    lines = [f"{len(payload.body)} bytes: {len(payload.upsert.nodes)} nodes, "
             f"{len(payload.upsert.edges)} edges"]  # fmt: skip
    if payload.dropped_nodes or payload.dropped_edges:
        lines.append(f"left out to stay under the size limit: {payload.dropped_nodes} nodes, "
                     f"{payload.dropped_edges} edges")  # fmt: skip
    for kind, nodes in sorted(by_kind.items()):
        lines.append(f"{kind} ({len(nodes)}):")
        lines += [f"  {n.key}{_attrs(n.attrs)}" for n in nodes]
    return lines


def _attrs(attrs: Mapping[str, object]) -> str:
    return f"  {', '.join(f'{k}={v}' for k, v in sorted(attrs.items()))}" if attrs else ""
