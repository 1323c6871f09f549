"""The Graph page's reading of nodes and edges (cloud_api.dashboard.graph_summary)."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud_api.dashboard.graph_summary import TOP_TASKS, Cluster, clusters, summarise
from cloud_api.schemas.graph import EdgeOut, NodeOut

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def test_pairs_sharing_a_file_form_one_cluster_and_the_heaviest_comes_first() -> None:
    pairs = [(2, "a", "b"), (3, "b", "c"), (9, "x", "y"), (1, "p", "q")]
    assert clusters(pairs) == [
        Cluster(["x", "y"], 9),
        Cluster(["a", "b", "c"], 5),
        Cluster(["p", "q"], 1),
    ]


def test_tasks_newest_first_with_their_files_and_dependencies_by_ecosystem() -> None:
    nodes = [
        NodeOut(id=i + 1, kind="task", key=str(i), attrs={}, updated_at=NOW) for i in range(12)
    ]
    nodes += [
        NodeOut(id=100, kind="file", key="a.py", attrs={}, updated_at=NOW),
        NodeOut(id=101, kind="dependency", key="pypi:requests", attrs={}, updated_at=NOW),
        NodeOut(id=102, kind="dependency", key="npm:react", attrs={}, updated_at=NOW),
    ]
    edges = [EdgeOut(id=1, src_id=12, dst_id=100, kind="touched", weight=None)]  # task "11"
    summary = summarise(nodes, edges)
    assert [t.task_id for t in summary.tasks] == [str(i) for i in range(11, 11 - TOP_TASKS, -1)]
    assert summary.tasks[0].files == ["a.py"] and summary.tasks[1].files == []
    assert summary.dependencies == {"npm": ["react"], "pypi": ["requests"]}
    assert not summary.empty and summarise([], []).empty
