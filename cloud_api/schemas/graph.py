"""Knowledge graph bodies: project metadata only (paths, languages, dependency names, commands).

Attribute values are short scalars or short lists, so file contents cannot be smuggled in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from cloud_api.schemas.common import MAX_INT, Body, Out

NodeKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
NodeKey = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ShortStr = Annotated[str, StringConstraints(max_length=500)]
AttrInt = Annotated[int, Field(ge=-MAX_INT - 1, le=MAX_INT)]
AttrValue = ShortStr | AttrInt | float | bool | Annotated[list[ShortStr], Field(max_length=50)]
Attrs = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], AttrValue], Field(max_length=32)
]


class NodeRef(Body):
    kind: NodeKind
    key: NodeKey


class NodeIn(NodeRef):
    attrs: Attrs = Field(default_factory=dict)


#: A co-change pair's count, or another edge's strength (the newest upload's value is kept).
Weight = Annotated[int, Field(ge=0, le=2**31 - 1)]


class EdgeIn(Body):
    src: NodeRef
    dst: NodeRef
    kind: NodeKind
    weight: Weight | None = None


class GraphUpsert(Body):
    """Nodes are added or their attributes replaced; edges are added or their weight
    replaced. An edge's ends
    must be in `nodes` or already in the graph (else 422, nothing written). The upload is
    written in chunks of 500 rows, each committed by itself: readers may see part of it while
    it runs, and if the answer is lost part may be written. Send the same upload again: it is
    an upsert, so it completes without duplicates (so does a 409, a node deleted meanwhile).
    `Idempotency-Key` is not taken here: it would make the upload one long transaction."""

    nodes: list[NodeIn] = Field(default_factory=list, max_length=5000)
    edges: list[EdgeIn] = Field(default_factory=list, max_length=20000)


class NodeOut(Out):
    id: int
    kind: str
    key: str
    attrs: dict[str, AttrValue]
    updated_at: datetime


class EdgeOut(Out):
    id: int
    src_id: int
    dst_id: int
    kind: str
    weight: int | None


class GraphOut(Out):
    nodes: list[NodeOut]
    edges: list[EdgeOut]


class GraphUpsertOut(Out):
    nodes: int
    edges: int


class GraphUploadOut(GraphUpsertOut):
    """A worker's upload: what it sent, and what its previous upload had that this one has
    not and no other contributor holds (so it was deleted)."""

    removed_nodes: int
    removed_edges: int
