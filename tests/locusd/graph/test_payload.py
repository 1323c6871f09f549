"""The upload built from an index and history stats: the cloud's own schema accepts it, it is
deterministic, it stays under its byte budget, and cold files are dropped before anything
else."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud_api.schemas.graph import GraphUpsert
from locusd.graph.payload import HistoryStats, PathHistory, build_payload
from locusd.graph.structure import Manifest, Structure, build

WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def structure(files: int = 0) -> Structure:
    paths = ["pyproject.toml", "src/app/hot.py", "src/app/warm.py", "docs/index.md"]
    paths += [f"src/bulk/cold_{i:05}.py" for i in range(files)]
    manifest = Manifest("pyproject.toml", "python", {"runtime": ("click",)}, ("pytest",))
    return build(paths, {"pyproject.toml": manifest})


HISTORY = HistoryStats(
    co_change={("src/app/warm.py", "src/app/hot.py"): 4, ("gone.py", "src/app/hot.py"): 9},
    paths={
        "src/app/hot.py": PathHistory(12, WHEN),
        "src/app/warm.py": PathHistory(3, WHEN),
        "gone.py": PathHistory(5, WHEN),  # not in the index (deleted or ignored): left out
    },
    tasks={41: ["src/app/hot.py", "gone.py"]},
)


def keys(upsert: GraphUpsert, kind: str) -> list[str]:
    return [n.key for n in upsert.nodes if n.kind == kind]


def test_the_payload_is_the_clouds_schema_and_deterministic() -> None:
    payload = build_payload(structure(), HISTORY)
    assert GraphUpsert.model_validate_json(payload.body) == payload.upsert
    assert build_payload(structure(), HISTORY).body == payload.body
    upsert = payload.upsert
    assert keys(upsert, "language") == ["python", "markdown", "toml"]
    assert keys(upsert, "dependency") == ["python:click"] and keys(upsert, "command") == ["pytest"]
    assert keys(upsert, "module") == ["src/app", "docs"]
    assert keys(upsert, "task") == ["41"]
    assert "gone.py" not in payload.body.decode()
    edges = {(e.src.key, e.dst.key, e.kind) for e in upsert.edges}
    assert edges == {
        ("pyproject.toml", "python:click", "runtime"),
        ("pyproject.toml", "pytest", "implies"),
        ("41", "src/app/hot.py", "touched"),
        ("src/app/hot.py", "src/app/warm.py", "co_change"),
    }
    assert [e.weight for e in upsert.edges if e.kind == "co_change"] == [4]  # the pair's count
    hot = next(n for n in upsert.nodes if n.key == "src/app/hot.py")
    assert hot.attrs == {
        "language": "python",
        "module": "src/app",
        "changes": 12,
        "last_change": WHEN.isoformat(),
    }


def test_an_empty_history_gives_the_structure_alone() -> None:
    upsert = build_payload(structure()).upsert
    assert sorted(keys(upsert, "file")) == sorted(structure().paths)
    assert keys(upsert, "task") == [] and all(e.kind != "co_change" for e in upsert.edges)


def test_over_the_budget_cold_files_go_first_and_every_edge_keeps_its_ends() -> None:
    big = structure(files=20_000)
    payload = build_payload(big, HISTORY)
    assert len(payload.body) <= 512 * 1024
    assert payload.dropped_nodes > 0
    files = keys(payload.upsert, "file")
    assert files[:3] == ["src/app/hot.py", "src/app/warm.py", "docs/index.md"]
    assert len(files) < 20_000 and "src/bulk/cold_00000.py" in files
    nodes = {(n.kind, n.key) for n in payload.upsert.nodes}
    for edge in payload.upsert.edges:
        assert (edge.src.kind, edge.src.key) in nodes and (edge.dst.kind, edge.dst.key) in nodes
    # Tighter: the co-change pair no longer fits; everything after it is dropped too.
    small = build_payload(big, HISTORY, limit=1200)
    assert len(small.body) <= 1200
    assert keys(small.upsert, "module") == ["src/bulk", "src/app", "docs"]
    assert keys(small.upsert, "file") == ["src/app/hot.py"]  # the task's file; no cold one
    tiny = build_payload(big, HISTORY, limit=900)
    assert keys(tiny.upsert, "module") and not keys(tiny.upsert, "file")


def test_the_budget_holds_with_many_edges_of_every_kind() -> None:
    """Every edge's bytes are counted as sent (a weightless edge carries ``"weight":null``):
    thousands of task edges and co-change pairs still end under the limit."""
    big = structure(files=20_000)
    cold = [f"src/bulk/cold_{i:05}.py" for i in range(20_000)]
    history = HistoryStats(
        co_change={(cold[i], cold[i + 1]): 2 for i in range(0, 6000, 2)},
        tasks={i: cold[i : i + 3] for i in range(1, 4000)},
    )
    payload = build_payload(big, history)
    assert payload.dropped_edges > 0  # the budget was reached
    assert len(payload.body) <= 512 * 1024
