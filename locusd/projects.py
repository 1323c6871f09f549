"""Which cloud project a person means: a number or a slug they typed, or — when they typed
none — the project whose listed remotes include the checkout they are in (as ``gh`` infers the
repository). The cloud records each project's remotes (fingerprints); the daemon's own
``daemon.repositories`` stand in when the command was not run from a checkout with a remote.

Pure functions over the cloud's answer, so every way of naming a project, and every way it can
be unknown or ambiguous, is tested without IO; the errors name the fix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cloud_api.schemas.projects import ProjectOut
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import Project

#: How many projects an error lists before "…".
LISTED = 8


def project(found: ProjectOut) -> Project:
    return Project(id=found.id, slug=found.slug, name=found.name, remotes=found.remotes)


def label(found: ProjectOut) -> str:
    """How an error names a project: its slug and number."""
    return f"{found.slug} ({found.id})"


def _listing(projects: Sequence[ProjectOut]) -> str:
    shown = ", ".join(label(p) for p in projects[:LISTED])
    return shown + (", …" if len(projects) > LISTED else "")


def by_name(projects: Sequence[ProjectOut], name: str) -> ProjectOut:
    """The project ``name`` (a number or a slug, case-insensitive) designates among those the
    user can see; an unknown or ambiguous name is an error naming the choices."""
    wanted = name.strip()
    if not wanted:
        raise LocusError(
            Code.INVALID_ARGUMENT, "--project is empty: give a project's slug or number"
        )
    if wanted.isdigit():
        matches = [p for p in projects if p.id == int(wanted)]
    else:
        matches = [p for p in projects if p.slug.casefold() == wanted.casefold()]
    if len(matches) == 1:
        return matches[0]
    if matches:  # the same slug in two organisations
        raise LocusError(
            Code.INVALID_ARGUMENT,
            f"project {wanted!r} is ambiguous: {_listing(matches)} — give its number instead",
        )
    yours = f"yours: {_listing(projects)}" if projects else "you can see no project"
    raise LocusError(
        Code.INVALID_ARGUMENT,
        f"no project {wanted!r} among the projects you can see ({yours});"
        " give one of these slugs or numbers",
    )


#: How a person names the project (the commands that take ``--project``).
WITH_PROJECT = "locus tasks list --project SLUG (or locus tasks create --project SLUG)"


def by_remotes(
    projects: Sequence[ProjectOut], remotes: Iterable[str], *, one: bool
) -> list[ProjectOut]:
    """The projects that list any of ``remotes`` (fingerprints). With ``one``, exactly one, or
    an error naming the fix: ``--project``, or adding the remote to the project."""
    served = sorted(set(remotes))
    matches = [p for p in projects if set(p.remotes) & set(served)]
    if not one or len(matches) == 1:
        return matches
    if not served:
        raise LocusError(
            Code.INVALID_ARGUMENT,
            "no project given, and this directory is not a checkout with a git remote"
            f" (nor does daemon.repositories list one): name it with {WITH_PROJECT}",
        )
    where = ", ".join(served)
    if matches:
        raise LocusError(
            Code.INVALID_ARGUMENT,
            f"this checkout's remote ({where}) is listed by several projects:"
            f" {_listing(matches)} — choose one with {WITH_PROJECT}",
        )
    raise LocusError(
        Code.INVALID_ARGUMENT,
        f"none of your projects lists this checkout's remote ({where}): name the project with"
        f" {WITH_PROJECT}, or add the remote to the project (its settings on the dashboard)",
    )
