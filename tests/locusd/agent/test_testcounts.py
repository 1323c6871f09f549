"""Test counts from real runner output: pytest, unittest, node --test and cargo test run here
for real (scripts/test.sh installs node and cargo); go, jest, vitest and mocha from their
recorded summary formats. Plus properties: any text parses without error to non-negative
counts, and a summary is found whatever surrounds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.testcounts import TestCounts, expected, judge, parse
from tests.support.programs import required


def counts(parser: str, passed: int, failed: int, skipped: int) -> TestCounts:
    return TestCounts(
        parser=parser, passed=passed, failed=failed, skipped=skipped, ran=passed + failed
    )


def output_of(cwd: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


PYTEST_FILE = textwrap.dedent(
    """\
    import pytest
    def test_ok(): assert 1
    def test_bad(): assert 0
    @pytest.mark.skip
    def test_skip(): pass
    @pytest.mark.xfail
    def test_xfail(): assert 0
    """
)
UNITTEST_FILE = textwrap.dedent(
    """\
    import unittest
    class T(unittest.TestCase):
        def test_a(self): pass
        def test_b(self): self.fail("x")
        def test_c(self): raise RuntimeError
        @unittest.skip("s")
        def test_d(self): pass
        @unittest.expectedFailure
        def test_e(self): self.fail()
        @unittest.expectedFailure
        def test_f(self): pass
    """
)
NODE_FILE = textwrap.dedent(
    """\
    const test = require("node:test"); const assert = require("node:assert");
    test("ok", () => {}); test("bad", () => assert.equal(1, 2));
    test("sk", { skip: true }, () => {}); test("td", { todo: true }, () => {});
    """
)


def test_real_pytest(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(PYTEST_FILE)
    text = output_of(tmp_path, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert parse(text) == counts("pytest", 1, 1, 2)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert parse(output_of(empty, sys.executable, "-m", "pytest", "-q")) == counts(
        "pytest", 0, 0, 0
    )


def test_real_unittest(tmp_path: Path) -> None:
    (tmp_path / "test_u.py").write_text(UNITTEST_FILE)
    text = output_of(tmp_path, sys.executable, "-m", "unittest", "-q")
    # failures + errors + unexpected successes fail; skips and expected failures are skipped.
    assert parse(text) == counts("unittest", 1, 3, 2)
    (tmp_path / "test_u.py").unlink()
    assert parse(output_of(tmp_path, sys.executable, "-m", "unittest", "-q")) == counts(
        "unittest", 0, 0, 0
    )


def test_real_node_test(tmp_path: Path) -> None:
    required("node", "nodejs")
    (tmp_path / "a.test.js").write_text(NODE_FILE)
    assert parse(output_of(tmp_path, "node", "--test")) == counts("tap", 1, 1, 2)
    (tmp_path / "a.test.js").unlink()
    assert parse(output_of(tmp_path, "node", "--test")) == counts("tap", 0, 0, 0)


def test_real_cargo_test(tmp_path: Path) -> None:
    required("cargo", "cargo")
    (tmp_path / "src").mkdir()
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "c"\nversion = "0.1.0"\n')
    (tmp_path / "src" / "lib.rs").write_text(
        "#[cfg(test)]\nmod t {\n#[test] fn ok() {}\n#[test] fn bad() { assert_eq!(1, 2); }\n"
        "#[test] #[ignore] fn later() {}\n}\n"
    )
    text = output_of(tmp_path, "cargo", "test", "--offline", "-q")
    # The library's tests (1 passed, 1 failed, 1 ignored); cargo stops before its doc-tests.
    assert parse(text) == counts("cargo test", 1, 1, 1)


RECORDED = {
    # go test -v ./... (one package failing, one without test files)
    "go -v": (
        "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestSub\n"
        "    calc_test.go:14: got 1, want 2\n--- FAIL: TestSub (0.00s)\n=== RUN   TestLater\n"
        "    calc_test.go:18: later\n--- SKIP: TestLater (0.00s)\n=== RUN   TestT\n"
        "=== RUN   TestT/sub\n--- PASS: TestT (0.00s)\n    --- PASS: TestT/sub (0.00s)\nFAIL\n"
        "FAIL\texample.com/calc\t0.003s\n?   \texample.com/cmd\t[no test files]\nFAIL\n",
        counts("go test", 3, 1, 1),
    ),
    "go packages": (
        "ok  \texample.com/a\t0.574s\n--- FAIL: TestOutput2 (0.00s)\n"
        "    testlog_test.go:42: was asked to fail\nFAIL\nFAIL\texample.com/b\t1.417s\n"
        "?   \texample.com/c\t[no test files]\nok  \texample.com/d\t0.002s [no tests to run]\n",
        counts("go test", 0, 1, 0),
    ),
    "go packages ok": (
        "ok  \texample.com/a\t0.574s\n?   \texample.com/c\t[no test files]\n",
        counts("go test (packages)", 1, 0, 0),
    ),
    "go nothing": (
        "?   \texample.com/a\t[no test files]\nok  \texample.com/b\t0.01s [no tests to run]\n",
        counts("go test (packages)", 0, 0, 0),
    ),
    "jest": (
        "> x@1.0.0 test\n> jest\n\nPASS  src/a.test.js\nFAIL  src/b.test.js\n"
        "Test Suites: 1 failed, 1 passed, 2 total\n"
        "Tests:       1 failed, 1 skipped, 2 passed, 4 total\n"
        "Snapshots:   0 total\nTime:        0.512 s\nRan all test suites.\n",
        counts("jest", 2, 1, 1),
    ),
    "jest none": (
        "No tests found, exiting with code 0\nIn /x\n  3 files checked.\n",
        counts("jest", 0, 0, 0),
    ),
    "vitest": (
        " ✓ src/a.test.ts (2)\n \u276f src/b.test.ts (2)\n\n Test Files  1 failed | 1 passed (2)\n"
        "      Tests  1 failed | 2 passed | 1 skipped (4)\n   Start at  10:00:00\n"
        "   Duration  512ms\n",
        counts("vitest", 2, 1, 1),
    ),
    "vitest colour": (
        "\x1b[2m Test Files \x1b[22m \x1b[1m\x1b[32m1 passed\x1b[39m\x1b[22m\x1b[90m (1)\x1b[39m\n"
        "\x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m3 passed\x1b[39m\x1b[22m\x1b[90m (3)\x1b[39m\n",
        counts("vitest", 3, 0, 0),
    ),
    "vitest none": ("No test files found, exiting with code 0\n", counts("vitest", 0, 0, 0)),
    "mocha": (
        "\n  median\n    ✓ odd\n    1) even\n    - later\n\n\n  1 passing (5ms)\n  1 pending\n"
        "  1 failing\n\n  1) median\n       even:\n     AssertionError\n",
        counts("mocha", 1, 1, 1),
    ),
    "tape": (
        "TAP version 13\nok 1 should be equal\n\n1..1\n# tests 1\n# pass  1\n\n# ok\n",
        counts("tap", 1, 0, 0),
    ),
    "node spec": (
        "✔ ok (0.5ms)\n\u2139 tests 2\n\u2139 suites 0\n\u2139 pass 2\n\u2139 fail 0\n"
        "\u2139 cancelled 0\n\u2139 skipped 0\n\u2139 todo 0\n",
        counts("tap", 2, 0, 0),
    ),
    "pytest colour": (
        "\x1b[31m===== \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m4 passed\x1b[0m, 2 warnings,"
        " 1 error\x1b[31m in 1.23s (0:00:01)\x1b[0m\x1b[31m =====\x1b[0m\n",
        counts("pytest", 4, 2, 0),
    ),
    "two suites": (
        "3 passed in 0.10s\n----\nRan 2 tests in 0.001s\n\nOK (skipped=1)\n",
        counts("pytest+unittest", 4, 0, 1),
    ),
    "nothing known": ("building...\nall good\n", None),
}


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_formats(name: str) -> None:
    text, want = RECORDED[name]
    assert parse(text) == want


@pytest.mark.parametrize(
    ("command", "runner"),
    [
        ("python3 -m pytest -q", "pytest"),
        ("python3 -m unittest discover -q", "unittest"),
        ("cargo test", "cargo test"),
        ("go test ./...", "go test"),
        ("npm test", "jest"),
        ("yarn run test", "vitest"),
        ("node --test", "tap"),
        ("make test", None),
        ("./scripts/check.sh", None),
    ],
)
def test_a_command_naming_a_runner_expects_its_summary(command: str, runner: str | None) -> None:
    found = expected(command)
    assert (found is None) if runner is None else (found is not None and runner in found)


def test_judge_says_why_not_passed() -> None:
    ok = counts("pytest", 3, 0, 0)
    pytest_only = expected("python3 -m pytest")
    assert judge(0, False, ok, pytest_only) is None
    assert judge(0, False, None, None) is None  # an unknown command: its exit code decides
    assert judge(1, False, ok, pytest_only) == "the check exited with code 1"
    assert judge(None, True, ok, pytest_only) == "the check ran over its time limit"
    assert judge(0, False, counts("pytest", 0, 0, 3), pytest_only) == "pytest ran 0 tests"
    failed = judge(0, False, counts("pytest", 2, 1, 0), pytest_only)
    assert failed == "pytest reports 1 failed though the exit code is 0"
    silent = judge(0, False, None, pytest_only)
    assert silent is not None and "no pytest summary" in silent
    other = judge(0, False, counts("mocha", 2, 0, 0), pytest_only)
    assert other is not None and "no pytest summary" in other


@given(st.text())
def test_any_text_parses_to_non_negative_counts(text: str) -> None:
    found = parse(text)
    if found is not None:
        assert min(found.passed, found.failed, found.skipped) >= 0
        assert found.ran == found.passed + found.failed


lines = st.text(alphabet=st.characters(blacklist_characters="\n\r\x1b"), max_size=40)


@given(
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.lists(lines, max_size=5),
    st.lists(lines, max_size=5),
)
def test_a_cargo_summary_is_found_whatever_surrounds_it(
    passed: int, failed: int, ignored: int, before: list[str], after: list[str]
) -> None:
    summary = (
        f"test result: ok. {passed} passed; {failed} failed; {ignored} ignored;"
        " 0 measured; 0 filtered out; finished in 0.00s"
    )
    noise = [line for line in before + after if not line.startswith(("test result:", "#"))]
    found = parse("\n".join([*noise[: len(before)], summary, *noise[len(before) :]]))
    assert found is not None and "cargo test" in found.parser
    assert found.failed >= failed and found.passed >= passed
