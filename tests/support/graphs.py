"""Knowledge-graph upload bodies as big as the API takes, for tests and the graph bench.

A maximal upload is 5,000 nodes and 20,000 edges (the schema's caps) in a body just under the
cloud's 10 MiB limit, so it is the most one request can make the database write."""

from __future__ import annotations

import json
import random
from typing import Any

NODES, EDGES = 5000, 20000
EDGE_KINDS = ("imports", "calls", "tests", "documents")


def node_ref(tag: str, i: int) -> dict[str, str]:
    return {"kind": "file", "key": f"{tag}/pkg{i % 50}/module{i}.py"}


def upload(
    tag: str,
    nodes: int = NODES,
    edges: int = EDGES,
    *,
    attr_chars: int = 400,
    shuffle: int | None = None,
) -> dict[str, Any]:
    """``nodes`` file nodes named by ``tag`` (three ``attr_chars``-long attributes each) and
    ``edges`` edges between them, all distinct. ``shuffle``: a seed to send them in a random
    order (concurrent uploads of one graph in different orders are what deadlocked)."""
    filler = "x" * attr_chars
    body_nodes = [
        {**node_ref(tag, i), "attrs": {"language": "python", "a": filler, "b": filler, "c": filler}}
        for i in range(nodes)
    ]
    body_edges = [
        {
            "src": node_ref(tag, i % nodes),
            "dst": node_ref(tag, (i * 7 + 1 + i // nodes) % nodes),
            "kind": EDGE_KINDS[(i // nodes) % len(EDGE_KINDS)],
        }
        for i in range(edges)
    ]
    if shuffle is not None:
        rng = random.Random(shuffle)
        rng.shuffle(body_nodes)
        rng.shuffle(body_edges)
    return {"nodes": body_nodes, "edges": body_edges}


def size(body: dict[str, Any]) -> int:
    """The body's size as aiohttp's ``json=`` sends it."""
    return len(json.dumps(body).encode())
