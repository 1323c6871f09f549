"""The pieces every benchmark suite shares (``bench/figures.py``): how a figure is shown in
each unit, the verdicts, the table, the JSON result and the exit code. Pure: nothing runs."""

from __future__ import annotations

import argparse
import json
import time

import pytest

from bench.figures import Figure, finish, machine, parse_sized, result_of, table


def figure(value: float, unit: str, passed: bool | None = None) -> Figure:
    return Figure("group", "key", "name", value, unit, "≤ 1" if passed is not None else "", passed)


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (0.3964, "ms", "0.396 ms"),
        (1.4401, "ms", "1.44 ms"),
        (96.14, "ms", "96.1 ms"),
        (1054.2, "ms", "1,054 ms"),
        (0.0012, "s", "0.001 s"),
        (2.544, "s", "2.54 s"),
        (0.12, "/s", "0.12/s"),
        (5967.3, "/s", "5,967/s"),
        (70.94, "MB", "70.9 MB"),
        (14.93, "kB", "14.9 kB"),
        (0.0234, "%", "0.02 %"),
        (2.372, "x", "2.37"),
        (2500, "", "2,500"),
    ],
)
def test_every_unit_is_shown_with_its_precision(value: float, unit: str, shown: str) -> None:
    assert figure(value, unit).shown() == shown


def test_verdicts_and_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    context, bar, missed = figure(1, "ms"), figure(1, "ms", True), figure(2, "ms", False)
    assert (context.verdict, bar.verdict, missed.verdict) == ("", "PASS", "MISS")
    args = argparse.Namespace(reps=3, json=True)
    started = time.monotonic()
    passing = result_of(machine(), args, [context, bar], started, raw={"n": 1})
    failing = result_of(machine(), args, [context, bar, missed], started)
    assert list(passing) == ["machine", "args", "figures", "values", "raw", "seconds", "passed"]
    assert passing["passed"] and not failing["passed"]
    assert passing["args"] == {"reps": 3, "json": True}
    assert passing["figures"][1] == {**vars(bar), "verdict": "PASS"}
    assert {"load_start", "load_end", "cpus"} <= set(passing["machine"])

    assert finish(passing, True, str) == 0
    assert json.loads(capsys.readouterr().out) == passing
    assert finish(failing, False, lambda result: "the table") == 1
    assert capsys.readouterr().out.startswith("the table\n\ntotal ")


def test_the_table_lines_up_its_columns() -> None:
    result = {
        "machine": {"load_start": "0.50", "load_end": "0.70"},
        "figures": [
            figure(0.25, "ms", True).as_json(),
            Figure("a longer group", "k", "n", 3, "", "", None).as_json(),
        ],
    }
    lines = table("Title", result, ["detail"]).splitlines()
    assert lines == [
        "Title",
        "load average (1 min) at start 0.50, at end 0.70",
        "",
        "group           figure     value  target  result",
        "group           name    0.250 ms  ≤ 1     PASS",
        "a longer group  n              3",
        "",
        "detail",
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"seconds": 4.0, "blocks": 3}),
        (["--quick"], {"seconds": 1.5, "blocks": 1}),
        (["--quick", "--blocks", "7"], {"seconds": 1.5, "blocks": 7}),
        (["--seconds", "9"], {"seconds": 9.0, "blocks": 3}),
    ],
)
def test_sizes_default_to_full_or_quick_and_a_given_flag_wins(
    argv: list[str], expected: dict[str, float]
) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--blocks", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parse_sized(parser, argv, {"seconds": (4.0, 1.5), "blocks": (3, 1)})
    found = {"seconds": args.seconds, "blocks": args.blocks}
    assert found == expected
    assert type(args.blocks) is int and type(args.seconds) is float
