"""Run handles (locusd/cli/handles.py): pure resolution over a list of runs, property-tested,
and the commands that take one (``review``, ``logs``, ``cancel``) as a user types them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locusd.protocol.messages import Run
from locusd.runner.handles import HandleError, pending_review, resolve, short_id
from tests.conftest import Cloud
from tests.locusd.agentkit import BUGGY, FIXED, call
from tests.locusd.cliuser import User, login_and_queue
from tests.support.anthropic_server import AnthropicServer


def a_run(run_id: str, task: int | None = None, at: str = "2026-12-05T10:00:00Z", **kw: str) -> Run:
    return Run(
        run_id=run_id, task_id=task, title="t", repo="/r", state=kw.get("state", "completed"),
        started_at=at,
    )  # fmt: skip


RUNS = [
    a_run("2-local-20261204-232333-874603", task=2, at="2026-12-04T23:23:33Z"),
    a_run("2-local-20261205-080000-000001", task=2, at="2026-12-05T08:00:00Z"),
    a_run("local-20261205-090000-123456", at="2026-12-05T09:00:00Z", state="awaiting_review"),
    a_run("17-local-20261205-070000-000002", task=17, at="2026-12-05T07:00:00Z"),
]


def test_a_handle_is_an_id_latest_a_task_number_or_a_unique_prefix() -> None:
    assert resolve("local-20261205-090000-123456", RUNS) == "local-20261205-090000-123456"
    assert resolve("latest", RUNS) == resolve("@", RUNS) == "local-20261205-090000-123456"
    assert resolve("2", RUNS) == "2-local-20261205-080000-000001"  # task 2's latest run
    assert resolve("17", RUNS) == "17-local-20261205-070000-000002"
    assert resolve("loc", RUNS) == "local-20261205-090000-123456"
    assert resolve("2-local-20261204", RUNS) == "2-local-20261204-232333-874603"


def test_a_short_id_is_stable_letters_and_names_its_run() -> None:
    first = RUNS[0].run_id
    assert short_id(first) == "zewfkgv" == RUNS[0].short_id  # the same on every machine
    shorts = {run.short_id for run in RUNS}
    assert len(shorts) == len(RUNS)
    assert all(len(s) == 7 and s.isalpha() and not set(s) & set("ilo") for s in shorts)
    for run in RUNS:
        assert resolve(run.short_id, RUNS) == run.run_id
        assert resolve(run.short_id[:4], RUNS) == run.run_id  # these four differ there
    assert Run.model_validate(RUNS[0].wire()).short_id == "zewfkgv"  # sent as shortId


def test_what_names_no_run_or_several_says_so() -> None:
    with pytest.raises(HandleError, match=r"matches 2 runs .*type more") as raised:
        resolve("2-", RUNS)
    assert all(run.short_id in str(raised.value) for run in RUNS if run.run_id.startswith("2-"))
    with pytest.raises(HandleError, match="no run matches 'zz'"):
        resolve("zz", RUNS)
    with pytest.raises(HandleError, match="no runs yet"):
        resolve("latest", [])
    with pytest.raises(HandleError, match="no run matches '99'"):
        resolve("99", RUNS)  # no task 99 and no id starting so
    with pytest.raises(HandleError, match="name a run"):
        resolve("", RUNS)


def test_review_without_a_handle_takes_the_one_awaiting_review() -> None:
    assert pending_review(RUNS) == "local-20261205-090000-123456"
    with pytest.raises(HandleError, match="no run is awaiting review"):
        pending_review(RUNS[:2])
    two = [*RUNS, a_run("local-x", state="awaiting_review")]
    with pytest.raises(HandleError, match=r"2 runs await review .*name one") as raised:
        pending_review(two)
    # Each listed as a person types it and tells it apart: short id and title.
    for run in (r for r in two if r.state == "awaiting_review"):
        assert f"{short_id(run.run_id)} {run.title!r}" in str(raised.value)
    assert str(raised.value).endswith(f"'locus review {short_id('local-20261205-090000-123456')}'")


ids = st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,12}", fullmatch=True), unique=True, max_size=8)


@given(ids, st.data())
def test_a_prefix_names_its_run_exactly_when_no_other_starts_so(
    run_ids: list[str], data: st.DataObject
) -> None:
    runs = [a_run(run_id) for run_id in run_ids]
    for run_id in run_ids:
        assert resolve(run_id, runs) == run_id  # a whole id always names itself
        if short_id(run_id) not in run_ids:
            assert resolve(short_id(run_id), runs) == run_id  # and so does its short id
    if not run_ids:
        return
    chosen = data.draw(st.sampled_from(run_ids))
    prefix = chosen[: data.draw(st.integers(1, len(chosen)))]
    shorts = {short_id(r): r for r in run_ids}
    if prefix in run_ids or prefix in ("latest", "@") or prefix.isdigit():
        return  # the earlier rules decide
    starting = {r for r in run_ids if r.startswith(prefix)}
    starting |= {r for short, r in shorts.items() if short.startswith(prefix)}
    if len(starting) == 1:
        assert resolve(prefix, runs) == chosen
    else:
        with pytest.raises(HandleError):
            resolve(prefix, runs)


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
@pytest.mark.timeout(180)
async def test_the_commands_take_handles(user: User, cloud: Cloud) -> None:
    script = [call("edit_file", path="stats.py", old_string=BUGGY, new_string=FIXED),
              call("finish", summary="fixed")]  # fmt: skip
    async with AnthropicServer(script) as model:
        user.agent(provider="anthropic", base_url=model.base_url)
        task_id = await login_and_queue(user, cloud)
        _, out, err = await user.locus("run", "--once", "--repo", str(user.repo), "--json")
    (run,) = json.loads(out)
    assert run["state"] == "awaiting_review", err
    run_id = run["run_id"]
    # No handle: the run awaiting review; its short id (or a prefix); a prefix; the task's
    # number; latest — all resolved by the daemon.
    short = run["short_id"]
    assert short == short_id(run_id)
    for handle in ([], [short], [short[:5]], [run_id[:6]], [str(task_id)], ["latest"], ["@"]):
        view = await user.json("review", *handle, "--no-interactive")
        assert view["runId"] == run_id, handle
    _, out, _ = await user.locus("logs", str(task_id), "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["kind"] == "completed" for e in events), "the task number named the run"
    code, _, err = await user.locus("logs", "zz-no-such", check=False)
    assert code == 1 and err.startswith("error: no run matches 'zz-no-such'"), err
    code, _, err = await user.locus("cancel", "zz-no-such", check=False)
    assert code == 1 and "no run matches" in err, err
    _, out, _ = await user.locus("runs")
    assert out.split("\t")[:2] == [short, run_id], out  # piped: the short id first, whole
