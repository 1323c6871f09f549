"""The published contract: a valid OpenAPI 3.1 document generated from the models, served by
the API, and rendered into docs/rest-api.md without drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from cloud_api.api.restdoc import render
from cloud_api.app import all_routes, openapi_document
from tests.conftest import Cloud

ROOT = Path(__file__).resolve().parents[3]


def test_document_is_valid_openapi_and_covers_every_route() -> None:
    doc = openapi_document()
    validate(doc)
    declared = {(r.method.lower(), r.full_path) for r in all_routes()}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}  # type: ignore[attr-defined]
    assert declared == documented


def test_rest_reference_is_generated_from_the_document() -> None:
    committed = (ROOT / "docs" / "rest-api.md").read_text()
    assert committed == render(openapi_document()), (
        "docs/rest-api.md is stale: run `locus-cloud openapi --markdown > docs/rest-api.md`"
    )


async def test_served_document_is_the_generated_one(cloud: Cloud) -> None:
    served = (await cloud.api.get(f"{cloud.url}/api/v1/openapi.json")).ok()
    assert served == openapi_document()


def test_idempotency_key_is_offered_only_where_the_server_honours_it() -> None:
    """Authenticated POSTs take the key; login (no principal to scope it by) does not."""
    paths: dict[str, Any] = openapi_document()["paths"]  # type: ignore[assignment]

    def takes_key(path: str) -> bool:
        params = paths[path]["post"]["parameters"]
        return any(p["name"] == "Idempotency-Key" for p in params)

    assert takes_key("/api/v1/projects/{project_id}/tasks")
    assert takes_key("/api/v1/worker/claim")
    assert not takes_key("/api/v1/auth/login")
