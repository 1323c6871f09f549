"""Who may do what in a project. Pure: the API resolves the principal's role, then asks here."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    MEMBER = "member"
    VIEWER = "viewer"
    #: A worker token: bound to one project, may only use the worker endpoints and
    #: write the knowledge graph.
    WORKER = "worker"


class Action(StrEnum):
    READ = "read"  # see the project, its tasks, events, artifacts, graph, workers
    WRITE_TASKS = "write_tasks"  # create/edit tasks and sprints, queue/cancel/retry/approve
    MANAGE = "manage"  # edit the project, manage members and worker tokens
    WORK = "work"  # claim, heartbeat, report status, upload artifacts and logs
    WRITE_GRAPH = "write_graph"  # upsert knowledge-graph nodes and edges


GRANTS: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset({Action.READ, Action.WRITE_TASKS, Action.MANAGE, Action.WRITE_GRAPH}),
    Role.MEMBER: frozenset({Action.READ, Action.WRITE_TASKS, Action.WRITE_GRAPH}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.WORKER: frozenset({Action.READ, Action.WORK, Action.WRITE_GRAPH}),
}


def can(role: Role | None, action: Action) -> bool:
    """``role`` None means the principal has no access to the project at all."""
    return role is not None and action in GRANTS[role]
