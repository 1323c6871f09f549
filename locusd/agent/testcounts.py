"""How many tests a check ran, passed, failed and skipped, read from its output: the summary
lines of the common runners (pytest, unittest, go test, cargo test, jest, vitest, mocha, node
--test / TAP). Pure functions, no IO.

Why: an exit code alone lets a check that ran nothing ("Ran 0 tests … OK") or whose failures
were swallowed (``… | tail -3``) look green. Every summary found is counted (a ``make test``
may run several suites); the counts are evidence for the reviewer, not a proof — the check runs
the agent's code, which could print anything (docs/agent.md, "Verification").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from pydantic import BaseModel, ConfigDict

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class TestCounts(BaseModel):
    """One runner's totals over the whole output (``ran`` = passed + failed)."""

    __test__ = False  # not a pytest test class, whatever its name
    model_config = ConfigDict(extra="forbid", frozen=True)

    parser: str
    passed: int
    failed: int
    skipped: int
    ran: int


def _counts(parser: str, passed: int, failed: int, skipped: int) -> TestCounts:
    passed, failed, skipped = max(passed, 0), max(failed, 0), max(skipped, 0)
    return TestCounts(
        parser=parser, passed=passed, failed=failed, skipped=skipped, ran=passed + failed
    )


def _words(text: str) -> dict[str, int]:
    """``"1 failed, 2 passed"`` → ``{"failed": 1, "passed": 2}`` (plural and singular alike)."""
    found: dict[str, int] = {}
    for number, word in re.findall(r"(\d+) ([a-z][a-z ]*?[a-z])(?=\W|$)", text):
        key = word.removesuffix("s") if word in ("errors", "warnings") else word
        found[key] = found.get(key, 0) + int(number)
    return found


# --- one function per runner: its totals, or None when its summary is not in the output ------

_PYTEST = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran) in [\d.]+s\b.*$", re.M)


def pytest(text: str) -> TestCounts | None:
    """``= 1 failed, 2 passed, 1 skipped, 1 xfailed in 0.81s =``; ``no tests ran in 0.5s``."""
    lines = _PYTEST.findall(text)
    if not lines:
        return None
    words: dict[str, int] = {}
    for line in lines:
        for key, value in _words(line).items():
            words[key] = words.get(key, 0) + value
    return _counts(
        "pytest",
        words.get("passed", 0) + words.get("xpassed", 0),
        words.get("failed", 0) + words.get("error", 0),
        words.get("skipped", 0) + words.get("xfailed", 0),
    )


_UNITTEST = re.compile(
    r"^Ran (\d+) tests? in [\d.]+s\s*\n\s*\n?(OK|FAILED|NO TESTS RAN)(.*)$", re.M
)


def unittest(text: str) -> TestCounts | None:
    """``Ran 6 tests in 0.001s`` then ``OK`` / ``FAILED (failures=1, errors=1, skipped=1,
    expected failures=1, unexpected successes=1)`` / ``NO TESTS RAN`` (3.12+)."""
    runs = _UNITTEST.findall(text)
    if not runs:
        return None
    passed = failed = skipped = 0
    for ran, _, detail in runs:
        parts = {k.strip(): int(v) for k, v in re.findall(r"([a-z ]+)=(\d+)", detail)}
        bad = parts.get("failures", 0) + parts.get("errors", 0)
        bad += parts.get("unexpected successes", 0)
        left_out = parts.get("skipped", 0) + parts.get("expected failures", 0)
        failed += bad
        skipped += left_out
        passed += int(ran) - bad - left_out
    return _counts("unittest", passed, failed, skipped)


_CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;", re.M)


def cargo(text: str) -> TestCounts | None:
    """``test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; …`` per test binary."""
    rows = _CARGO.findall(text)
    if not rows:
        return None
    return _counts("cargo test", *(sum(int(row[i]) for row in rows) for i in range(3)))


_GO_TEST = re.compile(r"^\s*--- (PASS|FAIL|SKIP): ", re.M)
_GO_PACKAGE = re.compile(r"^(ok|FAIL|\?) *\t\S+\t(.*)$", re.M)


def go(text: str) -> TestCounts | None:
    """``go test -v``: one ``--- PASS/FAIL/SKIP: TestX`` per test (subtests too). Without
    ``-v`` only packages: ``ok  pkg 0.01s``, ``FAIL pkg 0.01s``, ``?  pkg [no test files]`` —
    then the counts are of packages, and one that had nothing to run counts as none."""
    tests = _GO_TEST.findall(text)
    if tests:
        return _counts("go test", tests.count("PASS"), tests.count("FAIL"), tests.count("SKIP"))
    packages = _GO_PACKAGE.findall(text)
    if not packages:
        return None
    passed = sum(1 for s, rest in packages if s == "ok" and "[no tests to run]" not in rest)
    failed = sum(1 for s, _ in packages if s == "FAIL")
    return _counts("go test (packages)", passed, failed, 0)


_JEST = re.compile(r"^Tests:\s+(.*?\d+ total)\s*$", re.M)


def _word_rows(runner: str, rows: list[str], none_found: bool) -> TestCounts | None:
    """Counts summed over summary rows of ``N passed, M failed …`` words (jest, vitest: one row
    per project); zero tests when the runner said it found none."""
    if not rows:
        return _counts(runner, 0, 0, 0) if none_found else None
    words = [_words(row) for row in rows]
    return _counts(
        runner,
        sum(w.get("passed", 0) for w in words),
        sum(w.get("failed", 0) for w in words),
        sum(w.get("skipped", 0) + w.get("todo", 0) for w in words),
    )


def jest(text: str) -> TestCounts | None:
    """``Tests:       1 failed, 1 skipped, 2 passed, 4 total``; ``No tests found``."""
    return _word_rows("jest", _JEST.findall(text), "No tests found" in text)


_VITEST = re.compile(r"^\s*Tests\s+((?:\d+ [a-z]+\s*\|?\s*)+)\(\d+\)\s*$", re.M)


def vitest(text: str) -> TestCounts | None:
    """``      Tests  1 failed | 2 passed | 1 skipped (4)``; ``No test files found``."""
    return _word_rows("vitest", _VITEST.findall(text), "No test files found" in text)


_MOCHA = re.compile(r"^\s*(\d+) (passing|failing|pending)\b", re.M)


def mocha(text: str) -> TestCounts | None:
    """``  2 passing (8ms)`` / ``  1 failing`` / ``  1 pending`` (mocha, and old node-tap)."""
    rows = _MOCHA.findall(text)
    if not any(kind == "passing" for _, kind in rows):
        return None
    total = {k: sum(int(n) for n, kind in rows if kind == k) for k in ("passing", "failing")}
    pending = sum(int(n) for n, kind in rows if kind == "pending")
    return _counts("mocha", total["passing"], total["failing"], pending)


_TAP = re.compile(r"^(?:#|\u2139) (tests|pass|fail|cancelled|skipped|skip|todo) +(\d+)\s*$", re.M)


def tap(text: str) -> TestCounts | None:
    """``node --test`` (TAP, or the spec reporter's "information" sign instead of ``#``), tape: ``# tests
    4``, ``# pass 1``, ``# fail 1``, ``# cancelled 0``, ``# skipped 1``, ``# todo 1``."""
    rows = _TAP.findall(text)
    if not any(kind in ("tests", "pass") for kind, _ in rows):
        return None

    def total(*kinds: str) -> int:
        return sum(int(n) for kind, n in rows if kind in kinds)

    return _counts(
        "tap", total("pass"), total("fail", "cancelled"), total("skipped", "skip", "todo")
    )


PARSERS: dict[str, Callable[[str], TestCounts | None]] = {
    "pytest": pytest,
    "unittest": unittest,
    "cargo test": cargo,
    "go test": go,
    "jest": jest,
    "vitest": vitest,
    "mocha": mocha,
    "tap": tap,
}


def _found(text: str) -> Iterator[TestCounts]:
    clean = _ANSI.sub("", text).replace("\r\n", "\n")
    for parse in PARSERS.values():
        counts = parse(clean)
        if counts is not None:
            yield counts


def parse(text: str) -> TestCounts | None:
    """Every runner's summary in ``text``, added up (``parser`` names them all: ``pytest+tap``);
    None when no known runner's summary is there."""
    found = list(_found(text))
    if not found:
        return None
    return _counts(
        "+".join(c.parser for c in found),
        sum(c.passed for c in found),
        sum(c.failed for c in found),
        sum(c.skipped for c in found),
    )


_JS = frozenset({"jest", "vitest", "mocha", "tap"})
#: A command naming one of these runs that runner: its summary must then be in the output.
_RUNNERS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = (
    (re.compile(r"\bpytest\b|\bpy\.test\b"), frozenset({"pytest"})),
    (re.compile(r"\bunittest\b"), frozenset({"unittest"})),
    (re.compile(r"\bcargo\s+test\b"), frozenset({"cargo test"})),
    (re.compile(r"\bgo\s+test\b"), frozenset({"go test", "go test (packages)"})),
    (re.compile(r"\b(?:npm|pnpm|yarn|bun)\s+(?:run\s+)?test\b"), _JS),
    (re.compile(r"\b(?:jest|vitest|mocha|tape)\b|\bnode\s+--test\b"), _JS),
)


def expected(command: str) -> frozenset[str] | None:
    """The parsers whose summary a command must print when it names a known runner
    (``python3 -m pytest -q`` → pytest); None for anything else (``make test``)."""
    for pattern, parsers in _RUNNERS:
        if pattern.search(command):
            return parsers
    return None


def judge(
    exit_code: int | None, timed_out: bool, counts: TestCounts | None, runner: frozenset[str] | None
) -> str | None:
    """Why a check did not pass, or None when it did: exit code 0, no failures counted, at
    least one test ran — and, for a command naming a known runner, that runner's summary."""
    if timed_out:
        return "the check ran over its time limit"
    if exit_code != 0:
        return f"the check exited with code {exit_code}"
    if counts is None:
        if runner is not None:
            return (
                f"the check printed no {'/'.join(sorted(runner))} summary:"
                " the test runner did not finish"
            )
        return None
    if runner is not None and not runner & set(counts.parser.split("+")):
        return (
            f"the check printed no {'/'.join(sorted(runner))} summary"
            f" (only {counts.parser}'s): the test runner did not finish"
        )
    if counts.failed:
        return f"{counts.parser} reports {counts.failed} failed though the exit code is 0"
    if counts.ran == 0:
        return f"{counts.parser} ran 0 tests"
    return None
