"""The protocol reference is generated from the models and must not drift from them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]  # no stubs installed (a dev dependency via openapi-spec-validator)

from locusd.protocol import METHODS, NOTIFICATIONS, SERVER_REQUESTS
from locusd.protocol.docs import DOCS, MARKDOWN, SCHEMA, main, render
from locusd.protocol.errors import Code
from tests.locusd.server.democore import RUN, DemoCore


def test_committed_docs_match_the_models() -> None:
    assert main(["--check"]) == 0, "regenerate with: python -m locusd.protocol.docs"


def test_check_notices_a_difference(tmp_path: Path) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1  # missing files
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / MARKDOWN).write_text("edited by hand\n")
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_reference_covers_everything() -> None:
    text = render()[MARKDOWN]
    for name in [*METHODS, *NOTIFICATIONS, *SERVER_REQUESTS]:
        assert f"### {name}\n" in text
    for code in Code:
        assert f"| {int(code)} | `{code.name.lower()}` |" in text
    for rule in ("0700", "0600", "SO_PEERCRED", "Content-Length", "-32700", "bad_frame"):
        assert rule in text


async def test_schema_validates_real_messages() -> None:
    schema = json.loads((DOCS / SCHEMA).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)

    def check(name: str, instance: object) -> None:
        jsonschema.validate(instance, {"$ref": f"#/$defs/{name}", "$defs": schema["$defs"]})

    status = await DemoCore().daemon_status(None, None)  # type: ignore[arg-type]  # unused
    check("DaemonStatus", status.wire())
    check("Run", RUN.wire())
    check("LocusInitOptions", {"protocolVersion": "1.0", "client": {"name": "x"}, "extra": 1})
    assert schema["methods"]["locus/runs/show"]["params"] == {"$ref": "#/$defs/RunRef"}
    try:
        check("RunRef", {})
    except jsonschema.ValidationError as exc:
        assert "runId" in exc.message
    else:
        raise AssertionError("a RunRef without runId validated")
