"""The project page's reading of the knowledge graph: what a person wants at a glance
(languages, modules, commands, dependencies, recent tasks and their files, the hottest
co-change clusters), from the stored nodes and edges. Pure, so it is tested without a server.

It reads the node kinds and attributes the daemon's payload uses (locusd/graph/payload.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from cloud_api.schemas.graph import EdgeOut, NodeOut

#: How much of each list the page shows.
TOP_MODULES, TOP_TASKS, TOP_CLUSTERS, CLUSTER_EDGES = 20, 10, 8, 100


@dataclass(frozen=True)
class Cluster:
    """Files that change together: the pairs joined through shared files, strongest first."""

    files: list[str]
    weight: int  # the sum of its pairs' co-change counts


@dataclass(frozen=True)
class TaskFiles:
    task_id: str
    files: list[str]


@dataclass
class Summary:
    languages: list[tuple[str, int]] = field(default_factory=list)
    modules: list[tuple[str, int]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    dependencies: dict[str, list[str]] = field(default_factory=dict)  # ecosystem → names
    tasks: list[TaskFiles] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)
    files: int = 0

    @property
    def empty(self) -> bool:
        return not (self.languages or self.modules or self.files or self.tasks)


def _count(node: NodeOut, name: str) -> int:
    value = node.attrs.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def summarise(nodes: Sequence[NodeOut], edges: Sequence[EdgeOut]) -> Summary:
    by_id = {n.id: n for n in nodes}
    kinds: dict[str, list[NodeOut]] = defaultdict(list)
    for node in nodes:
        kinds[node.kind].append(node)
    out = Summary(files=len(kinds["file"]))
    out.languages = sorted(((n.key, _count(n, "files")) for n in kinds["language"]),
                           key=lambda kv: (-kv[1], kv[0]))  # fmt: skip
    out.modules = sorted(((n.key, _count(n, "files")) for n in kinds["module"]),
                         key=lambda kv: (-kv[1], kv[0]))[:TOP_MODULES]  # fmt: skip
    out.commands = sorted(n.key for n in kinds["command"])
    deps: dict[str, list[str]] = defaultdict(list)
    for node in kinds["dependency"]:
        ecosystem, _, name = node.key.partition(":")
        deps[ecosystem].append(name or ecosystem)
    out.dependencies = {k: sorted(v) for k, v in sorted(deps.items())}
    touched: dict[int, list[str]] = defaultdict(list)
    pairs: list[tuple[int, str, str]] = []
    for edge in edges:
        src, dst = by_id.get(edge.src_id), by_id.get(edge.dst_id)
        if src is None or dst is None:
            continue
        if edge.kind == "touched" and src.kind == "task":
            touched[src.id].append(dst.key)
        elif edge.kind == "co_change":
            pairs.append((edge.weight or 0, src.key, dst.key))
    tasks = sorted(kinds["task"], key=lambda n: (_task_number(n.key), n.key), reverse=True)
    out.tasks = [TaskFiles(n.key, sorted(touched[n.id])) for n in tasks[:TOP_TASKS]]
    out.clusters = clusters(pairs)
    return out


def _task_number(key: str) -> int:
    return int(key) if key.isdigit() else -1


def clusters(pairs: Sequence[tuple[int, str, str]]) -> list[Cluster]:
    """The strongest :data:`CLUSTER_EDGES` pairs joined into groups by shared files (union
    find), the heaviest groups first."""
    parent: dict[str, str] = {}

    def root(item: str) -> str:
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    strongest = sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))[:CLUSTER_EDGES]
    for _weight, a, b in strongest:
        parent[root(a)] = root(b)
    files: dict[str, set[str]] = defaultdict(set)
    weight: dict[str, int] = defaultdict(int)
    for w, a, b in strongest:
        top = root(a)
        files[top] |= {a, b}
        weight[top] += w
    found = [Cluster(sorted(files[top]), weight[top]) for top in files]
    return sorted(found, key=lambda c: (-c.weight, c.files))[:TOP_CLUSTERS]
