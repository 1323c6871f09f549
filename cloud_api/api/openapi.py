"""The OpenAPI 3.1 document, generated from the declared routes and their pydantic models."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from cloud_api.api.policy import PATH_IDS, Policy, Principals
from cloud_api.api.routing import Route
from cloud_api.schemas.common import IDEMPOTENCY_KEY_PATTERN, MAX_INT, Problem

REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "Malformed request (bad JSON, bad header)",
    "401": "No valid token",
    "403": "Your role does not allow this",
    "404": "Not found, or not yours to see",
    "408": "The request body did not arrive within body_read_seconds; the connection is closed",
    "409": "Conflict: illegal transition, stale version or stale claim; body has the current state",
    "413": "Body too large",
    "422": "Invalid field(s); errors[] names each one and how to fix it",
    "429": "Too many failed logins (POST /auth/login): wait the Retry-After header's seconds",
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, tp: Any) -> dict[str, Any]:
        schema = TypeAdapter(tp).json_schema(ref_template=REF, mode="serialization")
        self.components.update(schema.pop("$defs", {}))
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", tp.__name__)
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema

    def body(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        self.components.update(schema.pop("$defs", {}))
        name = model.__name__
        self.components[name] = schema
        return {"$ref": REF.format(model=name)}

    def query(self, model: type[BaseModel]) -> list[dict[str, Any]]:
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        self.components.update(schema.pop("$defs", {}))
        required = set(schema.get("required", []))
        return [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                **({"description": prop["description"]} if "description" in prop else {}),
            }
            for name, prop in schema.get("properties", {}).items()
        ]


def _optional(tp: Any) -> tuple[Any, bool]:
    """Split ``X | None`` into (X, True)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), True  # noqa: UP007
    return tp, False


def _security(policy: Policy) -> dict[str, Any]:
    """Who may call the operation: the bearer token's kinds or roles that pass (OpenAPI 3.1
    lets a non-OAuth scheme list role names), the permission and the id it is checked on."""
    access: dict[str, Any] = {"principals": str(policy.principals)}
    if policy.permission is not None:
        access |= {
            "permission": str(policy.permission.action),
            "checked_on": policy.permission.on,
            "roles": [str(r) for r in policy.permission.roles()],
        }
    public = policy.principals is Principals.ANYONE
    return {
        "description": f"Access: {policy.describe()}.",
        "security": [] if public else [{"bearer": policy.token_kinds()}],
        "x-access": access,
    }


def build(routes: list[Route], version: str) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    problem = schemas.ref(Problem)
    for route in routes:
        op: dict[str, Any] = {
            "operationId": f"{route.tag}_{route.handler.__name__}",
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": f"the {PATH_IDS[name].noun}'s id",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
                }
                for name in re.findall(r"{(\w+)}", route.path)
            ],
            "responses": {},
        }
        if route.query is not None:
            op["parameters"] += schemas.query(route.query)
        if route.method == "POST" and route.auth and route.idempotent:
            op["parameters"].append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "retries with the same key get the first response, never a second "
                        "effect; 1 to 255 printable ASCII characters (e.g. a UUID), else 400"
                    ),
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": IDEMPOTENCY_KEY_PATTERN,
                    },
                }
            )
        if route.body is not None:
            op["requestBody"] = {
                # A missing body reads as {}: only required when some field is.
                "required": any(f.is_required() for f in route.body.model_fields.values()),
                "content": {"application/json": {"schema": schemas.body(route.body)}},
            }
        if route.raw:
            op["responses"]["200"] = {
                "description": "text/event-stream of task events (id, event: kind, data: JSON)",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        elif route.response is None:
            op["responses"]["204"] = {"description": "Done"}
        else:
            tp, optional = _optional(route.response)
            op["responses"][str(route.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": schemas.ref(tp)}},
            }
            if optional:
                op["responses"]["204"] = {"description": "Nothing (e.g. no task to claim in time)"}
        errors = dict(_ERRORS)
        if route.body is not None:
            errors["415"] = "The body is not sent as JSON (Content-Type: application/json)"
        for code, text in errors.items():
            op["responses"][code] = {
                "description": text,
                "content": {"application/problem+json": {"schema": problem}},
            }
        op.update(_security(route.policy))
        paths.setdefault(route.full_path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Locus Cloud API",
            "version": version,
            "description": "Projects, sprints, tasks, dispatch to workers, knowledge graph.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
