"""The schema, as SQLAlchemy Core tables. Alembic migrations are generated from (and checked
against) this metadata; the schema changes only through a migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from cloud_api.store.types import UTCDateTime, db_now

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids on PostgreSQL; SQLite needs INTEGER PRIMARY KEY for its rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _created() -> Column[object]:
    return Column("created_at", UTCDateTime(), nullable=False, default=db_now())


def _fk(name: str, target: str, *, nullable: bool = False, cascade: bool = True) -> Column[int]:
    return Column(
        name,
        Id,
        ForeignKey(target, ondelete="CASCADE" if cascade else "SET NULL"),
        nullable=nullable,
        index=True,
    )


organisations = Table(
    "organisations",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("slug", String(64), nullable=False, unique=True),
    _created(),
)

users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    _created(),
)

memberships = Table(
    "memberships",
    metadata,
    _id(),
    _fk("org_id", "organisations.id"),
    _fk("user_id", "users.id"),
    Column("role", String(16), nullable=False),
    _created(),
    UniqueConstraint("org_id", "user_id", name="uq_memberships_org_user"),
)

projects = Table(
    "projects",
    metadata,
    _id(),
    _fk("org_id", "organisations.id"),
    Column("name", String(200), nullable=False),
    Column("slug", String(64), nullable=False),
    # Normalised git remote fingerprints (cloud_api.domain.remotes) this project serves.
    Column("remotes", JSON, nullable=False, default=list),
    _created(),
    # Conflict-aware dispatch (docs/dispatch.md): avoid | warn | ignore.
    Column("dispatch_overlap", String(8), nullable=False, server_default="avoid"),
    # Bumped by every graph write: the key of the footprints cached from the graph.
    Column("graph_version", Integer, nullable=False, server_default="0"),
    UniqueConstraint("org_id", "slug", name="uq_projects_org_slug"),
)

sprints = Table(
    "sprints",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    Column("name", String(200), nullable=False),
    Column("goal", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False, default="planned"),
    Column("starts_on", Date, nullable=True),
    Column("ends_on", Date, nullable=True),
    _created(),
)

workers = Table(
    "workers",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    Column("name", String(100), nullable=False),
    Column("host", String(255), nullable=False, default=""),
    Column("capacity", Integer, nullable=False, default=1),
    Column("repositories", JSON, nullable=False, default=list),
    Column("version", String(64), nullable=False, default=""),
    _created(),
    Column("last_seen_at", UTCDateTime(), nullable=False, default=db_now()),
    UniqueConstraint("project_id", "name", name="uq_workers_project_name"),
)

tasks = Table(
    "tasks",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    _fk("sprint_id", "sprints.id", nullable=True, cascade=False),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("priority", Integer, nullable=False, default=0),
    Column("labels", JSON, nullable=False, default=list),
    # Optional remote fingerprint: only workers serving that repository may claim the task.
    Column("repository", String(300), nullable=True),
    Column("status", String(32), nullable=False),
    Column("status_reason", Text, nullable=True),
    # Optimistic concurrency: every write checks and bumps it.
    Column("version", Integer, nullable=False, default=1),
    # Number of claims so far; with claim_token it fences every worker write.
    Column("attempt", Integer, nullable=False, default=0),
    Column("expired_leases", Integer, nullable=False, default=0),
    _fk("lease_owner_id", "workers.id", nullable=True, cascade=False),
    Column("claim_token", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("feedback", Text, nullable=True),
    Column("summary", Text, nullable=True),
    Column("created_by", Id, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    # The people on it (members of the project's organisation, checked by the API): who
    # owns it, and who reviews the agent's work. A removed user leaves the task unassigned.
    _fk("assignee_id", "users.id", nullable=True, cascade=False),
    _fk("reviewer_id", "users.id", nullable=True, cascade=False),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False, default=db_now(), onupdate=db_now()),
    # Age for dispatch order: when the task last entered 'queued'.
    Column("queued_at", UTCDateTime(), nullable=True),
    Index("ix_tasks_lease", "status", "lease_expires_at"),
)
#: The order queued tasks are handed out in: every query that means "the next tasks a claim
#: would take" orders by it (the claim, conflict-aware dispatch's candidates, the board).
DISPATCH_ORDER = (tasks.c.priority.desc(), tasks.c.queued_at, tasks.c.id)
# The claim's candidate query reads its first row straight off this index: same columns and
# directions as its ORDER BY (DISPATCH_ORDER), so nothing is sorted.
Index("ix_tasks_dispatch_order", tasks.c.project_id, tasks.c.status, *DISPATCH_ORDER)

# On PostgreSQL the id's default is locus_event_id() (migration 0004): the transaction's xid
# first, then nextval — what the settled horizon of cursor readers relies on (store/horizon.py).
task_events = Table(
    "task_events",
    metadata,
    _id(),
    _fk("task_id", "tasks.id"),
    _fk("project_id", "projects.id"),
    # status | comment | log | feedback | artifact | lease_expired | answer | created | updated
    Column("kind", String(32), nullable=False),
    Column("actor", String(16), nullable=False),
    Column("actor_id", Id, nullable=True),
    Column("attempt", Integer, nullable=False, default=0),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=True),
    # The lease holder a status event concerns (cancellations are routed to it).
    Column("worker_id", Id, nullable=True, index=True),
    # Worker-supplied sequence number of a log chunk: a retried chunk is not stored twice.
    Column("seq", BigInteger, nullable=True),
    Column("data", JSON, nullable=False, default=dict),
    _created(),
    UniqueConstraint("task_id", "attempt", "kind", "seq", name="uq_task_events_seq"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    _created(),
)

artifacts = Table(
    "artifacts",
    metadata,
    _id(),
    _fk("task_id", "tasks.id"),
    _fk("project_id", "projects.id"),
    Column("attempt", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    _created(),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    # sha256 of the token: tokens are 256-bit random, so a fast hash is the right one.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("scope", String(16), nullable=False),  # user | worker
    _fk("user_id", "users.id", nullable=True),
    _fk("project_id", "projects.id", nullable=True),
    Column("worker_name", String(100), nullable=True),
    Column("label", String(200), nullable=False, default=""),
    _fk("created_by", "users.id", nullable=True, cascade=False),
    _created(),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

graph_nodes = Table(
    "graph_nodes",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    Column("kind", String(32), nullable=False),
    Column("key", String(500), nullable=False),
    Column("attrs", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime(), nullable=False, default=db_now(), onupdate=db_now()),
    UniqueConstraint("project_id", "kind", "key", name="uq_graph_nodes_key"),
)

graph_edges = Table(
    "graph_edges",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    _fk("src_id", "graph_nodes.id"),
    _fk("dst_id", "graph_nodes.id"),
    Column("kind", String(32), nullable=False),
    Column("weight", Integer, nullable=True),  # a co-change pair's count; the newest is kept
    UniqueConstraint("project_id", "src_id", "dst_id", "kind", name="uq_graph_edges_key"),
)

# Which worker's upload holds which node and edge (a person's upsert holds none): a worker's
# upload replaces only its own set, and a row goes when no worker holds it any more.
graph_node_sources = Table(
    "graph_node_sources",
    metadata,
    _fk("node_id", "graph_nodes.id"),
    _fk("worker_id", "workers.id"),
    PrimaryKeyConstraint("node_id", "worker_id"),
)

graph_edge_sources = Table(
    "graph_edge_sources",
    metadata,
    _fk("edge_id", "graph_edges.id"),
    _fk("worker_id", "workers.id"),
    PrimaryKeyConstraint("edge_id", "worker_id"),
)

#: Planning requests (cloud_api/domain/plans.py): a goal, the worker's fenced claim, and the
#: proposals it reported as JSON ([{number, title, description, likely_files, task_id}]).
plan_requests = Table(
    "plan_requests",
    metadata,
    _id(),
    _fk("project_id", "projects.id"),
    Column("goal", Text, nullable=False),
    _fk("requested_by", "users.id", nullable=True, cascade=False),
    Column("status", String(16), nullable=False),
    _fk("worker_id", "workers.id", nullable=True, cascade=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("claim_token", String(64), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
    Column("proposals", JSON, nullable=False, default=list),
    Column("reason", Text, nullable=True),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False, default=db_now(), onupdate=db_now()),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    # The token that sent the request: keys are per principal, never shared.
    Column("token_id", Id, nullable=False),
    Column("key", String(255), nullable=False),
    Column("method", String(8), nullable=False),
    Column("path", String(2000), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(8), nullable=False),  # pending | done
    Column("status_code", Integer, nullable=True),
    Column("content_type", String(100), nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    _created(),
    UniqueConstraint("token_id", "key", name="uq_idempotency_keys_token_key"),
    # Keys are kept for a while, then pruned by age (cloud_api.dispatch.reaper).
    Index("ix_idempotency_keys_created_at", "created_at"),
)
