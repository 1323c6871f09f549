"""A planning run's proposals, accepted into the backlog: the chosen ones become tasks in the
checkout's cloud project, through the daemon's cloud session.

Only the accepted proposals' titles and descriptions leave the machine (likely files stay in
the run: paths of the code are not the task's text). Each creation carries an
``Idempotency-Key`` derived from the run and the proposal's number, so a retry after a lost
answer (a network drop, a daemon killed before it recorded the task) is a replay of the first
creation, never a second task; a proposal already recorded as created is not sent again.
Without a login or a project the call fails naming the fix, and the proposals stay in the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cloud_api.domain.priorities import LEVELS
from cloud_api.schemas.tasks import TaskOut
from locusd.cloud.client import CloudClient
from locusd.projects import by_name, by_remotes
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import PlanProposal, Run
from locusd.runner.runs import Runs
from locusd.session import CloudSession, mapped

#: Accepted proposals land in the backlog at the lowest priority, as ``locus tasks create``'s.
PRIORITY = LEVELS[-1].value


def idempotency_key(run_id: str, number: int) -> str:
    return f"locus-plan:{run_id}:{number}"


def chosen(run: Run, numbers: list[int]) -> list[PlanProposal]:
    """The proposals ``numbers`` name, or an error naming the run's numbers."""
    if run.kind != "plan":
        raise LocusError(
            Code.INVALID_ARGUMENT, f"run {run.run_id} is not a planning run (locus plan)"
        )
    if not run.proposals:
        why = "it has not ended yet" if run.ended_at is None else f"it ended {run.state}"
        raise LocusError(
            Code.INVALID_RUN_STATE, f"run {run.run_id} has no proposals to accept: {why}"
        )
    unknown = sorted(set(numbers) - {p.number for p in run.proposals})
    if unknown:
        raise LocusError(
            Code.INVALID_ARGUMENT,
            f"numbers: no proposal {', '.join(map(str, unknown))} in run {run.run_id}"
            f" (it has 1 to {len(run.proposals)})",
        )
    return [p for p in run.proposals if p.number in set(numbers)]


class Plans:
    def __init__(
        self, runs: Runs, session: CloudSession, fingerprints: Callable[[list[str]], set[str]]
    ) -> None:
        self.runs = runs
        self.session = session
        self.fingerprints = fingerprints
        self._lock = asyncio.Lock()  # one acceptance at a time: a proposal is created once

    async def accept(
        self, run_id: str, numbers: list[int], project_name: str | None
    ) -> tuple[Run, list[TaskOut]]:
        async with self._lock:
            run = self.runs.get(run_id)
            wanted = chosen(run, numbers)
            created: list[TaskOut] = []
            async with self.session.client() as client:
                todo = [p for p in wanted if p.task_id is None]
                project_id = await self._project(client, run, project_name) if todo else None
                for proposal in wanted:
                    if proposal.task_id is not None:
                        created.append(await mapped(client.task(proposal.task_id)))
                        continue
                    assert project_id is not None
                    task = await mapped(
                        client.create_task(
                            project_id,
                            proposal.title,
                            proposal.description,
                            priority=PRIORITY,
                            idempotency_key=idempotency_key(run.run_id, proposal.number),
                        )
                    )
                    run = self._record(run.run_id, proposal.number, task.id)
                    created.append(task)
            return run, created

    async def _project(self, client: CloudClient, run: Run, name: str | None) -> int:
        listed = await mapped(client.projects())
        try:
            if name is not None:
                return by_name(listed, name).id
            served = await asyncio.to_thread(self.fingerprints, [run.repo])
            (found,) = by_remotes(listed, served, one=True)
            return found.id
        except LocusError as exc:
            raise LocusError(
                exc.code,
                f"{exc.message} (the proposals stay in run {run.run_id}: accept them with"
                f" locus plan --accept N --project SLUG {run.short_id})",
            ) from None

    def _record(self, run_id: str, number: int, task_id: int) -> Run:
        run = self.runs.get(run_id)
        proposals = [
            p.model_copy(update={"task_id": task_id}) if p.number == number else p
            for p in run.proposals
        ]
        return self.runs.update(run_id, proposals=proposals)
