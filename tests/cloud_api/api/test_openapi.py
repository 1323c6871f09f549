"""The published contract: a valid OpenAPI 3.1 document generated from the models, served by
the API, and rendered into docs/rest-api.md without drift."""

from __future__ import annotations

from pathlib import Path

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
