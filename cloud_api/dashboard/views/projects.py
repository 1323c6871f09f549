"""Your projects (the home page), new organisations and projects, and project settings:
members and roles (of the project's organisation), worker tokens, git remotes."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from aiohttp import web

from cloud_api.api import orgs as orgs_api
from cloud_api.api import projects as projects_api
from cloud_api.api import tokens as tokens_api
from cloud_api.api.errors import field_problem
from cloud_api.dashboard.web import Visitor, action, done, page, respond
from cloud_api.domain.footprints import OverlapPolicy
from cloud_api.domain.permissions import Action, Role, can
from cloud_api.schemas.common import PageQuery
from cloud_api.schemas.orgs import MemberAdd, MemberUpdate, OrgCreate
from cloud_api.schemas.projects import ProjectCreate, ProjectOut, ProjectUpdate
from cloud_api.schemas.tokens import TokenCreate

routes = web.RouteTableDef()


async def project_nav(visitor: Visitor, section: str, project_id: int | None = None) -> ProjectOut:
    """Load the project (the URL's, or ``project_id``) and set up the navigation; a project
    the visitor cannot see is a 404 page."""
    path = {} if project_id is None else {"project_id": project_id}
    project: ProjectOut = await visitor.call(projects_api.get_project, path=path)
    visitor.nav.update(project=project, role=project.role, section=section)
    return project


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


@routes.get("/", name="dashboard.home")
@page
async def home(visitor: Visitor) -> web.StreamResponse:
    projects = await visitor.every(projects_api.list_projects, projects_api.ProjectQuery)
    orgs = await visitor.every(orgs_api.list_orgs, PageQuery)
    creatable = [o for o in orgs if can(o.role, Action.WRITE_TASKS)]
    return respond(visitor, "home.html", projects=projects, orgs=orgs, creatable=creatable)


def slug_from(name: str) -> str:
    """The slug a name suggests: accents dropped, lower case, anything else a single '-'.
    dashboard.js derives the same in the browser as the name is typed (the rule is kept this
    small so that the two agree); the form sends it, edited or not, and an empty one is
    derived here, so it works without JavaScript too."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].rstrip("-")


def _slug(visitor: Visitor) -> str:
    slug = visitor.field("slug").strip() or slug_from(visitor.field("name"))
    if not slug:
        raise field_problem(
            "form",
            "slug",
            "the name has no letters or digits a slug can use: type a slug",
            "type a slug",
        )
    return slug


@routes.post("/orgs")
@action
async def create_org(visitor: Visitor) -> web.StreamResponse:
    body = visitor.body(OrgCreate, name=visitor.field("name"), slug=_slug(visitor))
    org = await visitor.call(orgs_api.create_org, body=body)
    return done(visitor, "/", f"Organisation {org.name} created: you are its owner.")


@routes.post("/projects")
@action
async def create_project(visitor: Visitor) -> web.StreamResponse:
    body = visitor.body(
        ProjectCreate,
        org_id=visitor.field("org_id"),
        name=visitor.field("name"),
        slug=_slug(visitor),
        remotes=_lines(visitor.field("remotes")),
    )
    project = await visitor.call(projects_api.create_project, body=body)
    return done(visitor, f"/projects/{project.id}", f"Project {project.name} created.", back=False)


async def _settings(visitor: Visitor, **extra: Any) -> web.StreamResponse:
    project = await project_nav(visitor, "settings")
    members = await visitor.call(orgs_api.list_members, path={"org_id": project.org_id})
    tokens = []
    if project.role is not None and can(project.role, Action.MANAGE):
        tokens = await visitor.every(tokens_api.list_tokens, PageQuery)
    return respond(
        visitor,
        "settings.html",
        project=project,
        members=members,
        tokens=tokens,
        roles=[Role.OWNER, Role.MEMBER, Role.VIEWER],
        new_token=extra.get("new_token"),
        overlap_policies=list(OverlapPolicy),
    )


@routes.get("/projects/{project_id}/settings", name="dashboard.settings")
@page
async def settings(visitor: Visitor) -> web.StreamResponse:
    return await _settings(visitor)


@routes.post("/projects/{project_id}/settings")
@action
async def update_project(visitor: Visitor) -> web.StreamResponse:
    body = visitor.body(
        ProjectUpdate,
        name=visitor.field("name"),
        remotes=_lines(visitor.field("remotes")),
        # Left out (None: unchanged) when the form has no such field.
        dispatch_overlap=visitor.field("dispatch_overlap") or None,
    )
    project = await visitor.call(projects_api.update_project, body=body)
    return done(visitor, f"/projects/{project.id}/settings", "Project settings saved.")


@routes.post("/projects/{project_id}/members")
@action
async def add_member(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "settings")
    body = visitor.body(MemberAdd, email=visitor.field("email"), role=visitor.field("role"))
    member = await visitor.call(orgs_api.add_member, body=body, path={"org_id": project.org_id})
    return done(
        visitor, f"/projects/{project.id}/settings", f"{member.email} added as {member.role}."
    )


@routes.post("/projects/{project_id}/members/{user_id}")
@action
async def change_member(visitor: Visitor) -> web.StreamResponse:
    project = await project_nav(visitor, "settings")
    where = f"/projects/{project.id}/settings"
    path = {"org_id": project.org_id}
    if visitor.field("remove"):
        await visitor.call(orgs_api.remove_member, path=path)
        return done(visitor, where, "Member removed.")
    body = visitor.body(MemberUpdate, role=visitor.field("role"))
    member = await visitor.call(orgs_api.update_member, body=body, path=path)
    return done(visitor, where, f"{member.email} is now {member.role}.")


@routes.post("/projects/{project_id}/tokens")
@action
async def create_token(visitor: Visitor) -> web.StreamResponse:
    """The one response that shows the token: rendered here, never redirected or stored."""
    days = visitor.field("expires_in_days")
    body = visitor.body(
        TokenCreate,
        worker_name=visitor.field("worker_name"),
        label=visitor.field("label"),
        # Digits go to the schema as text: it parses and bounds them (a clear 422, whatever
        # their length — int() here failed past 4,300 digits, and on '²').
        expires_in_days=days if days.isdigit() else None if days == "never" else 365,
    )
    created = await visitor.call(tokens_api.create_token, body=body)
    return await _settings(visitor, new_token=created)


@routes.post("/projects/{project_id}/tokens/{token_id}/revoke")
@action
async def revoke_token(visitor: Visitor) -> web.StreamResponse:
    token = await visitor.call(tokens_api.revoke_token)
    where = f"/projects/{token.project_id}/settings"
    return done(visitor, where, f"Token {token.prefix}… for {token.worker_name} revoked.")
