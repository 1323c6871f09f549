"""Targeted wake-ups for the claim long-poll: a queued task wakes one waiter that can take it.

Waking every idle worker of a project for each task made 1,000 idle long-polls run 1,000 claim
queries per task. Instead, a task that becomes claimable publishes a *work token* naming its
project, id and repository (:func:`work_topic`), and the hub hands it to **one** waiter of that
project that may claim it (it serves the repository, or the task has none; a waiter asking for
one task takes only that one): the one that has waited longest without a token.

A token is used up by the waiter's next claim once it **takes the token's task**, or **finds
nothing at all** (then nothing it could take is queued, that task included: a claim starts after
the publish, and a publish follows its commit). In every other case the token is passed to the
next eligible waiter, so no task stays queued while a waiter that could take it sleeps: the
claim took another task (say of higher priority), the claim failed, or the waiter left before
claiming (the client hung up, the server is closing, the handler was cancelled).

"Subscribe before check" still holds: a waiter is registered before its first claim, and a
waiter whose claim is running can still be handed a token (it then claims once more), so a task
committed just after a claim's snapshot is not missed. When every eligible waiter already holds
a token, a new one is dropped: each of them will claim after that commit anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

PREFIX = "work:"


@dataclass(frozen=True)
class WorkToken:
    project_id: int
    #: None: "check again" for everyone (after a lost LISTEN connection, at shutdown).
    task_id: int | None
    repository: str | None


def work_topic(project_id: int, task_id: int, repository: str | None) -> str:
    """The wake-up topic of one claimable task (a repository fingerprint has no newline)."""
    return f"{PREFIX}{project_id}:{task_id}:{repository or ''}"


def parse_work_topic(topic: str) -> WorkToken | None:
    """The token a ``work:`` topic carries; None for other topics or a malformed one."""
    if not topic.startswith(PREFIX):
        return None
    project, _, rest = topic.removeprefix(PREFIX).partition(":")
    task, _, repository = rest.partition(":")
    if not project.isdigit():
        return None
    if not rest:  # ``work:<project>``, from a replica still on the previous version
        return WorkToken(int(project), None, None)
    if not task.isdigit():
        return None
    return WorkToken(int(project), int(task), repository or None)


class Waiter:
    """One claim long-poll: what it may take and the tokens it has been handed."""

    def __init__(
        self,
        project_id: int,
        repositories: Iterable[str],
        task_id: int | None = None,
        on_free: Callable[[Waiter], None] = lambda _w: None,
        exclude: Iterable[int] = (),
    ) -> None:
        self.project_id = project_id
        self.repositories = frozenset(repositories)
        self.task_id = task_id
        self.exclude = frozenset(exclude)
        #: Handed over, not yet covered by a claim.
        self._pending: list[WorkToken] = []
        #: Taken by the claim running now: settled by its result.
        self._checking: list[WorkToken] = []
        self._woken = asyncio.Event()
        self._on_free = on_free

    def can_take(self, token: WorkToken) -> bool:
        """Mirrors the claim query's filter (dispatch.claims), so a token only goes to a
        waiter whose claim could return its task."""
        if token.task_id is None:
            return True
        if self.task_id is not None and token.task_id != self.task_id:
            return False
        if token.task_id in self.exclude:
            return False
        return token.repository is None or token.repository in self.repositories

    def hand(self, token: WorkToken) -> None:
        self._pending.append(token)
        self._woken.set()

    def begin_check(self) -> None:
        """Call just before each claim: the tokens handed over so far are covered by it, and
        the waiter may be handed a new one (then it claims once more)."""
        if self._pending:
            self._checking += self._pending
            self._pending.clear()
            self._woken.clear()
            self._on_free(self)

    def checked(self, claimed_task: int | None) -> None:
        """The claim's result: nothing found uses up every token it covered; a task taken uses
        up that task's token only, even one handed over while the claim ran (the others are
        passed on when the waiter leaves)."""
        if claimed_task is None:
            self._checking.clear()
        else:
            self._checking = [t for t in self._checking if t.task_id != claimed_task]
            self._pending = [t for t in self._pending if t.task_id != claimed_task]

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - the deadline is the point
        """True once a token is held, False on timeout."""
        if self._pending:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._woken.wait()
        except TimeoutError:
            return bool(self._pending)
        return True

    def unused(self) -> list[WorkToken]:
        """Tokens of tasks this waiter never settled (a "check again" token is nobody's)."""
        return [t for t in (*self._checking, *self._pending) if t.task_id is not None]


class WorkWaiters:
    """The long-polls of each project, and who gets the next token."""

    def __init__(self, on_wake: Callable[[str], None] | None = None) -> None:
        #: Waiters without a token, longest-waiting first, per (project, repository); the key
        #: (project, None) holds all of a project's.
        self._free: defaultdict[tuple[int, str | None], dict[Waiter, None]] = defaultdict(dict)
        self._all: set[Waiter] = set()
        self._on_wake = on_wake or (lambda _cause: None)

    @staticmethod
    def _keys(waiter: Waiter) -> list[tuple[int, str | None]]:
        return [(waiter.project_id, None), *((waiter.project_id, r) for r in waiter.repositories)]

    def _set_free(self, waiter: Waiter, free: bool) -> None:
        for key in self._keys(waiter):
            queue = self._free[key]
            queue.pop(waiter, None)
            if free:
                queue[waiter] = None  # to the back: the others have waited longer
            elif not queue:
                del self._free[key]

    @contextlib.contextmanager
    def waiting(
        self,
        project_id: int,
        repositories: Iterable[str],
        task_id: int | None = None,
        exclude: Iterable[int] = (),
    ) -> Iterator[Waiter]:
        """Register a long-poll (before its first claim); on leaving, pass its tokens on."""
        waiter = Waiter(project_id, repositories, task_id, on_free=self._freed, exclude=exclude)
        self._all.add(waiter)
        self._set_free(waiter, True)
        try:
            yield waiter
        finally:
            self._all.discard(waiter)
            self._set_free(waiter, False)
            for token in waiter.unused():
                self.dispatch(token, cause="passed")

    def dispatch(self, token: WorkToken, cause: str = "queued") -> bool:
        """Hand ``token`` to the eligible waiter without a token that has waited longest.
        False when there is none (nobody here could take it, or all of them hold one)."""
        if token.task_id is None:
            for waiter in [w for w in self._all if w.project_id == token.project_id]:
                self._give(waiter, token)
                self._on_wake("all")
            return True
        queue = self._free.get((token.project_id, token.repository), {})
        chosen = next((w for w in queue if w.can_take(token)), None)
        if chosen is None:
            return False
        self._give(chosen, token)
        self._on_wake(cause)
        return True

    def wake_all(self) -> None:
        """Every waiter claims once more (after a lost LISTEN connection, at shutdown)."""
        for waiter in list(self._all):
            self._give(waiter, WorkToken(waiter.project_id, None, None))
            self._on_wake("all")

    def _give(self, waiter: Waiter, token: WorkToken) -> None:
        waiter.hand(token)
        self._set_free(waiter, False)

    def _freed(self, waiter: Waiter) -> None:
        if waiter in self._all:
            self._set_free(waiter, True)
