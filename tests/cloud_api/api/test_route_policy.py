"""Routes declare who may call them, and nothing else decides it.

- A route that declares no policy (or two, or an id it does not have) is refused when it is
  declared: no route can be left with an implicit one.
- The handler a module exports (which the dashboard calls directly) is the guarded one.
- No handler checks access itself any more (a source scan), and the OpenAPI document shows each
  route's policy (which tokens, which permission on which id).
- The authorisation matrix (test_authorisation_matrix.py) covers every declared route.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cloud_api.api.context import Ctx
from cloud_api.api.policy import PATH_IDS, Permission, Principals
from cloud_api.api.routing import Router
from cloud_api.app import all_routes, openapi_document
from cloud_api.domain.permissions import Action
from tests.cloud_api.api.test_authorisation_matrix import ROUTES

ROOT = Path(__file__).resolve().parents[3]


class Named(BaseModel):
    name: str


async def plain(ctx: Ctx) -> None:
    """A handler for declarations that must be refused."""


async def one_task(ctx: Ctx, task_id: int) -> None:
    """A handler of a route with a task id."""


async def str_task(ctx: Ctx, task_id: str) -> None:
    """A path id that is not an int."""


async def org_in_body(ctx: Ctx, body: Named) -> None:
    """A route whose body names no organisation."""


@pytest.mark.parametrize(
    ("path", "handler", "policy"),
    [
        ("/x", plain, {}),  # says nothing
        ("/x", plain, {"signed_in": True, "worker_only": True}),  # says two things
        ("/x", plain, {"auth": False, "admin_only": True}),
        ("/x/{task_id}", plain, {"worker_only": True}),  # the handler lacks the path id
        ("/x/{task_id}", str_task, {"worker_only": True}),  # not typed as an id
        ("/x/{thing_id}", one_task, {"worker_only": True}),  # an unknown kind of id
        ("/x", one_task, {"worker_only": True}),  # a parameter that is no path id
        ("/x/{task_id}", one_task, {"permission": Permission(Action.READ, "project_id")}),
        ("/x", org_in_body, {"permission": Permission(Action.READ, "org_id")}),
        ("/x/{task_id}", one_task, {"permission": Permission(Action.READ, "artifact_id")}),
    ],
)
def test_a_route_without_one_clear_policy_is_refused_when_declared(
    path: str, handler: object, policy: dict[str, object]
) -> None:
    with pytest.raises(TypeError, match="GET /x"):
        Router("t").get(path, summary="x", **policy)(handler)  # type: ignore[arg-type]


def test_every_route_declares_its_policy_and_exports_the_guarded_handler() -> None:
    routes = all_routes()
    assert len(routes) == 61
    for route in routes:
        assert route.policy.principals in Principals
        if route.policy.permission is not None:
            on = route.policy.permission.on
            assert f"{{{on}}}" in route.path or (route.body and on in route.body.model_fields)
        # The module's name for the handler is the guarded one (the dashboard imports it).
        module = importlib.import_module(route.handler.__module__)
        assert getattr(module, route.handler.__name__) is route.handler, route.full_path
        assert getattr(route.handler, "__wrapped__", None) is not None, route.full_path
        for name in re.findall(r"{(\w+)}", route.path):
            assert name in PATH_IDS


def test_no_handler_checks_access_itself() -> None:
    imperative = re.compile(r"\.require\(|\.path_id\(|_worker_only|task_project|require_owner")
    allowed = {"policy.py", "context.py"}
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "cloud_api" / "api").glob("*.py"))
        if path.name not in allowed
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if imperative.search(line)
    ]
    assert found == [], "declare it on the route instead:\n" + "\n".join(found)


def test_the_openapi_document_shows_each_routes_policy() -> None:
    doc: dict[str, Any] = openapi_document()
    for route in all_routes():
        op = doc["paths"][route.full_path][route.method.lower()]
        policy, access = route.policy, op["x-access"]
        assert access["principals"] == policy.principals
        if policy.principals is Principals.ANYONE:
            assert op["security"] == []
        else:
            assert op["security"] == [{"bearer": policy.token_kinds()}]
        if policy.permission is None:
            assert "permission" not in access
        else:
            assert access["permission"] == policy.permission.action
            assert access["checked_on"] == policy.permission.on
        assert op["description"].startswith("Access: ")
    # Spot checks, written out.
    paths = doc["paths"]
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    assert paths["/api/v1/worker/claim"]["post"]["security"] == [{"bearer": ["worker"]}]
    assert paths["/api/v1/users"]["get"]["security"] == [{"bearer": ["admin"]}]
    read_task = paths["/api/v1/tasks/{task_id}"]["get"]
    assert read_task["security"] == [{"bearer": ["owner", "member", "viewer", "worker"]}]
    assert read_task["x-access"] | {"roles": None} == {
        "principals": "signed_in",
        "permission": "read",
        "checked_on": "task_id",
        "roles": None,
    }
    org_manage = paths["/api/v1/orgs/{org_id}/members"]["post"]
    assert org_manage["security"] == [{"bearer": ["owner"]}]


def test_the_matrix_covers_every_route() -> None:
    names = {"org": "org_id", "project": "project_id", "task": "task_id", "sprint": "sprint_id"}
    names |= {"user": "user_id", "token": "token_id"}
    covered = set()
    for method, template, _rule, _body in ROUTES:
        path = re.sub(r"{(\w+)}", lambda m: "{" + names[m.group(1)] + "}", template)
        path = path.replace("artifacts/999999", "artifacts/{artifact_id}")
        path = path.replace("plans/999999", "plans/{plan_id}")
        covered.add((method, "/api/v1" + path.replace("nodes/999999", "nodes/{node_id}")))
    declared = {(r.method, r.full_path) for r in all_routes()}
    # Logging in and out are tested on their own (test_api_auth.py): a logout ends the token.
    assert declared - covered == {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/logout")}
    assert covered <= declared
