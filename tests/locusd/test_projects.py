"""Naming a project: by number, by slug in any case, or by the checkout's remote — and every
way that can fail says how to name it instead (``locusd/projects.py``, no IO)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloud_api.schemas.projects import ProjectOut
from locusd.projects import by_name, by_remotes
from locusd.protocol.errors import Code, LocusError

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def made(id_: int, slug: str, *remotes: str, org: int = 1) -> ProjectOut:
    return ProjectOut(
        id=id_, org_id=org, name=slug.title(), slug=slug, remotes=list(remotes), created_at=NOW
    )


APP = made(1, "app", "github.com/acme/app")
WEB = made(2, "web", "github.com/acme/web", "github.com/acme/app")
TWIN = made(3, "app", org=2)


def test_a_number_or_a_slug_in_any_case() -> None:
    assert by_name([APP, WEB], "2") is WEB
    assert by_name([APP, WEB], " WeB ") is WEB


def test_unknown_empty_or_shared_names_say_what_to_give() -> None:
    with pytest.raises(LocusError) as info:
        by_name([APP, WEB], "api")
    assert info.value.code is Code.INVALID_ARGUMENT
    assert info.value.message == (
        "no project 'api' among the projects you can see (yours: app (1), web (2));"
        " give one of these slugs or numbers"
    )
    many = [made(i, f"p{i}") for i in range(1, 12)]
    with pytest.raises(LocusError, match=r"p8 \(8\), …\); give one"):
        by_name(many, "nope")
    with pytest.raises(LocusError, match="you can see no project"):
        by_name([], "app")
    with pytest.raises(LocusError, match="--project is empty"):
        by_name([APP], "  ")
    with pytest.raises(LocusError, match=r"ambiguous: app \(1\), app \(3\) — give its number"):
        by_name([APP, TWIN], "app")
    assert by_name([APP, TWIN], "3") is TWIN


def test_the_checkouts_remote_names_the_project() -> None:
    assert by_remotes([APP, WEB], ["github.com/acme/web"], one=True) == [WEB]
    assert by_remotes([APP, WEB], ["github.com/acme/app"], one=False) == [APP, WEB]
    assert by_remotes([APP, WEB], [], one=False) == []
    with pytest.raises(LocusError, match=r"listed by several projects: app \(1\), web \(2\)"):
        by_remotes([APP, WEB], ["github.com/acme/app"], one=True)
    with pytest.raises(LocusError, match=r"none of your projects lists .*\(gitlab.com/x/y\)"):
        by_remotes([APP, WEB], ["gitlab.com/x/y"], one=True)
    with pytest.raises(LocusError, match="not a checkout with a git remote"):
        by_remotes([APP, WEB], [], one=True)
