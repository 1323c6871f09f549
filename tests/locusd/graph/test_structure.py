"""The pure structure of a repository: dependency names and well-known commands are the only
things read from inside a file; hostile manifests are skipped with a reason, never a crash."""

from __future__ import annotations

import json

import pytest

from locusd.graph.structure import (
    MAX_MANIFEST_BYTES,
    Manifest,
    Skipped,
    build,
    language,
    module,
    parse_manifest,
)

SECRET = "CANARY_FIELD_7d1e"


def parsed(path: str, text: str) -> Manifest:
    found = parse_manifest(path, text.encode())
    assert isinstance(found, Manifest), found
    return found


def test_pyproject_gives_dependency_names_of_every_group_and_tool_commands() -> None:
    manifest = parsed(
        "pyproject.toml",
        f"""
[project]
name = "{SECRET}"
description = "{SECRET}"
dependencies = ["aiohttp>=3.10", "pydantic[email]~=2.7 ; python_version>'3.10'", "not a req!"]
[project.optional-dependencies]
{SECRET}_group = ["rich"]
[dependency-groups]
dev = ["pytest>=8", {{include-group = "{SECRET}"}}]
[tool.pytest.ini_options]
addopts = "{SECRET}"
[tool.ruff]
line-length = 99
""",
    )
    assert manifest.dependencies == {
        "runtime": ("aiohttp", "pydantic"),
        "optional": ("rich",),
        "dev": ("pytest",),
    }
    assert manifest.commands == ("pytest", "ruff check .")
    assert SECRET not in repr(manifest)


def test_package_json_reads_dependency_names_and_only_well_known_script_keys() -> None:
    doc = {
        "name": SECRET,
        "dependencies": {"react": "^18", "@types/node": "*", "Not A Name!": "1"},
        "devDependencies": {"typescript": SECRET},
        "scripts": {"test": f"jest {SECRET}", "build": "tsc", SECRET: "rm -rf /"},
    }
    manifest = parsed("web/package.json", json.dumps(doc))
    assert manifest.dependencies == {"runtime": ("@types/node", "react"), "dev": ("typescript",)}
    assert manifest.commands == ("npm run build", "npm test")
    assert SECRET not in repr(manifest)


def test_cargo_go_requirements_and_makefile() -> None:
    cargo = parsed(
        "Cargo.toml",
        f'[package]\nname = "{SECRET}"\n[dependencies]\nserde = "1"\n'
        '[dev-dependencies]\nproptest = "1"\n[target."cfg(unix)".dependencies]\nlibc = "0.2"\n',
    )
    assert cargo.dependencies == {"dev": ("proptest",), "runtime": ("libc", "serde")}
    assert cargo.commands == ("cargo build", "cargo test")
    gomod = parsed(
        "go.mod",
        f"module example.com/{SECRET}\n\ngo 1.22\n\nrequire github.com/pkg/errors v0.9.1\n"
        "require (\n\tgolang.org/x/sync v0.7.0 // indirect\n)\n",
    )
    assert gomod.dependencies == {"runtime": ("github.com/pkg/errors", "golang.org/x/sync")}
    reqs = parsed(
        "requirements-dev.txt",
        f"# {SECRET}\n-e .\n--index-url https://{SECRET}\nrequests==2.0  # pinned\n"
        f"https://example.com/{SECRET}.whl\nflask\n",
    )
    assert reqs.dependencies == {"dev": ("flask", "requests")}
    make = parsed("Makefile", f"X := 1\ntest: build\n\tpytest\n{SECRET}:\nlint::\ncheck:=no\n")
    assert make.commands == ("make test", "make lint")
    assert SECRET not in repr((cargo, gomod, reqs, make))


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        ("pyproject.toml", b"[project\nname=", "not valid TOML"),
        ("Cargo.toml", b"\xff\xfe", "not UTF-8"),
        ("package.json", b"{", "not valid JSON"),
        ("package.json", b"[1, 2]", "not a JSON object"),
        ("package.json", b"[" * 100_000, "nested too deeply"),
        ("pyproject.toml", b"a = " + b"[" * 100_000, "nested too deeply"),
        ("package.json", b" " * (MAX_MANIFEST_BYTES + 1), "larger than 256 KiB"),
    ],
)
def test_a_broken_or_huge_manifest_is_skipped_with_a_reason(
    path: str, data: bytes, reason: str
) -> None:
    assert parse_manifest(path, data) == Skipped(path, reason)


def test_wrong_types_inside_a_manifest_are_ignored_not_a_crash() -> None:
    manifest = parsed(
        "pyproject.toml",
        '[project]\ndependencies = "x"\noptional-dependencies = [1]\n[tool]\npoetry = 3\n',
    )
    assert manifest.dependencies == {}
    assert parsed("package.json", '{"dependencies": [1], "scripts": "test"}').commands == ()


def test_languages_modules_and_bad_names() -> None:
    paths = [
        "src/app/main.py",
        "src/app/types.pyi",
        "src/lib.rs",
        "web/index.ts",
        "web/logo.png",
        "README.md",
        "evil\x1b[31mname.py",
        "bidi\u202eyp.exe",
    ]
    found = build(paths, {})
    assert found.languages == {"python": 2, "markdown": 1, "rust": 1, "typescript": 1}
    assert found.modules == {"src/app": 2, "web": 2, "src": 1}
    assert [s.path for s in found.skipped] == ["bidi\\u202eyp.exe", "evil\\x1b[31mname.py"]
    assert "evil\x1b[31mname.py" not in found.paths
    assert language("x.svg") is None and module("top.py") is None


def test_a_path_that_is_not_utf8_is_skipped_and_shown_escaped() -> None:
    raw = b"caf\xe9.py".decode("utf-8", "surrogateescape")
    found = build([raw, "ok.py"], {})
    assert found.paths == ("ok.py",)
    assert found.skipped == (Skipped("caf\\udce9.py", "the name is not UTF-8"),)
