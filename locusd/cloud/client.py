"""An async REST client for exactly what the daemon asks of the cloud (docs/rest-api.md).

Answers are the cloud's own pydantic models (:mod:`cloud_api.schemas`, the REST contract the
daemon imports; the cloud never imports the daemon). Failures are :class:`CloudError`s that say
whether a retry may help. Every POST carries an ``Idempotency-Key`` — the caller's, when it
will retry the same request (the outbox, a claim whose answer was lost), or a fresh uuid4 — and
its body is canonical JSON, so a retry is byte-identical and the cloud replays the first answer.

The client itself never retries: the outbox and the worker loop own that policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from cloud_api.domain.states import TaskStatus, UserAction
from cloud_api.schemas.auth import LoginIn, LoginOut, MeOut
from cloud_api.schemas.common import FieldError, Page, Problem
from cloud_api.schemas.plans import PlanClaimIn, PlanClaimOut
from cloud_api.schemas.projects import ProjectOut
from cloud_api.schemas.tasks import (
    AnswerIn,
    ArtifactKind,
    ArtifactOut,
    CommentIn,
    EventOut,
    FeedbackIn,
    TaskAction,
    TaskCreate,
    TaskOut,
)
from cloud_api.schemas.tokens import TokenCreate, TokenCreated
from cloud_api.schemas.workers import (
    ClaimIn,
    ClaimOut,
    Fence,
    HeartbeatOut,
    LogOut,
    ReportedStatus,
    SignalsOut,
    WorkerOut,
    WorkerRegister,
)
from locusd import __version__
from locusd.cloud.canonical import canonical
from locusd.cloud.errors import (
    BadResponse,
    CloudError,
    CloudUnavailable,
    InvalidRequest,
    error_for_status,
)
from locusd.cloud.outbox import OutboxEntry, Sender
from locusd.cloud.writes import (
    WRITES,
    LogStream,
    artifact_body,
    log_body,
    status_body,
    to_json,
)
from locusd.cloudurl import normalise_url

API_PREFIX = "/api/v1"
PAGE_SIZE = 200

M = TypeVar("M", bound=BaseModel)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare here, and the backoff covers it


def _error(status: int, reason: str | None, raw: bytes, headers: Mapping[str, str]) -> CloudError:
    """A problem+json answer (or a proxy's HTML page) as a CloudError."""
    retry_after = _retry_after(headers.get("Retry-After"))
    try:
        problem = Problem.model_validate_json(raw)
    except ValidationError:
        text = raw.decode("utf-8", "replace").strip()[:500] or None
        return error_for_status(status, reason or "HTTP error", text, retry_after=retry_after)
    return error_for_status(
        status,
        problem.title,
        problem.detail,
        errors=problem.errors,
        current=problem.current,
        retry_after=retry_after,
    )


def _parse(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BadResponse(
            f"the cloud's answer is not a {model.__name__}: {exc.error_count()} errors"
        ) from exc


class CloudClient:
    """One cloud, one token. Pass an ``aiohttp.ClientSession`` to share connections; without
    one the client makes its own (on first use) and closes it in :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        long_poll_margin: float = 10.0,
    ) -> None:
        self.base_url = normalise_url(base_url)
        self.token = token
        self.timeout = timeout
        self.long_poll_margin = long_poll_margin
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing --------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        limit_seconds: float | None = None,
    ) -> tuple[int, bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Accept": "application/json", "User-Agent": f"locusd/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        if method in ("POST", "PATCH"):
            headers["Content-Type"] = "application/json"
            data = canonical(body or {})
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}{API_PREFIX}{path}"
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=limit_seconds or self.timeout),
            ) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise _error(resp.status, resp.reason, raw, resp.headers)
                return resp.status, raw
        except (aiohttp.ClientError, TimeoutError) as exc:
            what = str(exc) or type(exc).__name__
            raise CloudUnavailable(
                f"cannot reach the cloud at {self.base_url}: {what}", retryable=True
            ) from exc

    async def _get(self, path: str, model: type[M], **params: Any) -> M:
        return _parse(model, (await self._call("GET", path, params=params))[1])

    async def _post(
        self,
        path: str,
        body: Mapping[str, Any],
        model: type[M],
        idempotency_key: str | None = None,
        limit_seconds: float | None = None,
    ) -> M:
        _, raw = await self._call(
            "POST", path, body=body, idempotency_key=idempotency_key, limit_seconds=limit_seconds
        )
        return _parse(model, raw)

    async def _all(self, path: str, model: type[M], **params: Any) -> list[M]:
        """Every item of a paged list, following ``next_cursor``."""
        items: list[M] = []
        after = 0
        while True:
            page = await self._get(path, Page[model], limit=PAGE_SIZE, after=after, **params)  # type: ignore[valid-type]
            items.extend(page.items)
            if page.next_cursor is None:
                return items
            after = page.next_cursor

    # --- people ----------------------------------------------------------------------------

    @classmethod
    async def login(
        cls,
        base_url: str,
        email: str,
        password: str,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> LoginOut:
        """Exchange e-mail and password for a session token (``.token``) and the user."""
        async with cls(base_url, None, session=session) as anonymous:
            body = to_json(LoginIn.model_construct(email=email, password=password))
            return await anonymous._post("/auth/login", body, LoginOut)

    async def logout(self) -> None:
        """Revoke this client's token on the cloud."""
        await self._call("POST", "/auth/logout")

    async def me(self) -> MeOut:
        return await self._get("/me", MeOut)

    async def projects(self) -> list[ProjectOut]:
        return await self._all("/projects", ProjectOut)

    async def tasks(self, project_id: int, status: TaskStatus | None = None) -> list[TaskOut]:
        return await self._all(f"/projects/{project_id}/tasks", TaskOut, status=status)

    async def task(self, task_id: int) -> TaskOut:
        return await self._get(f"/tasks/{task_id}", TaskOut)

    async def create_task(
        self,
        project_id: int,
        title: str,
        description: str = "",
        repository: str | None = None,
        priority: int = 0,
        *,
        labels: list[str] | None = None,
        queued: bool = False,
        idempotency_key: str | None = None,
    ) -> TaskOut:
        """A new task, in the backlog (or straight in the queue with ``queued``)."""
        body = TaskCreate.model_construct(
            title=title,
            description=description,
            priority=priority,
            labels=labels or [],
            repository=repository,
            status="queued" if queued else "backlog",
        )
        path = f"/projects/{project_id}/tasks"
        return await self._post(path, to_json(body), TaskOut, idempotency_key)

    async def cancel_task(
        self, task_id: int, *, comment: str | None = None, idempotency_key: str | None = None
    ) -> TaskOut:
        return await self.act(task_id, UserAction.CANCEL, comment, idempotency_key=idempotency_key)

    async def act(
        self,
        task_id: int,
        action: UserAction,
        text: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> TaskOut:
        """A person's move of a task (``POST /tasks/{id}/<action>``): ``text`` is the feedback
        of request-changes, the answer of answer, else an optional comment."""
        body: BaseModel
        if action is UserAction.REQUEST_CHANGES:
            body = FeedbackIn.model_construct(feedback=text or "")
        elif action is UserAction.ANSWER:
            body = AnswerIn.model_construct(answer=text or "")
        else:
            body = TaskAction.model_construct(comment=text)
        path = f"/tasks/{task_id}/{action.value}"
        return await self._post(path, to_json(body), TaskOut, idempotency_key)

    async def comment(self, task_id: int, text: str) -> EventOut:
        """A comment on the task's timeline."""
        body = to_json(CommentIn.model_construct(body=text))
        return await self._post(f"/tasks/{task_id}/comments", body, EventOut)

    async def update_task(self, task_id: int, **fields: object) -> TaskOut:
        """Change a task's fields (title, description, priority…), not its status."""
        _, raw = await self._call("PATCH", f"/tasks/{task_id}", body=fields)
        return _parse(TaskOut, raw)

    async def create_worker_token(
        self,
        project_id: int,
        worker_name: str,
        *,
        expires_in_days: int = 365,
        label: str = "",
        idempotency_key: str | None = None,
    ) -> TokenCreated:
        """A worker token for this project (owners); the secret is ``.token``, shown once."""
        body = TokenCreate.model_construct(
            worker_name=worker_name, expires_in_days=expires_in_days, label=label
        )
        path = f"/projects/{project_id}/tokens"
        return await self._post(path, to_json(body), TokenCreated, idempotency_key)

    # --- the worker ------------------------------------------------------------------------

    async def register(
        self, host: str, capacity: int, repositories: list[str], version: str = __version__
    ) -> WorkerOut:
        body = WorkerRegister.model_construct(
            host=host, capacity=capacity, repositories=repositories, version=version
        )
        return await self._post("/worker/register", to_json(body), WorkerOut)

    async def claim(
        self,
        wait_seconds: float = 0,
        *,
        task_id: int | None = None,
        exclude: list[int] | None = None,
        idempotency_key: str | None = None,
    ) -> ClaimOut | None:
        """The next task, or None when none came within ``wait_seconds`` (≤ 30).

        Reuse the key only to retry a claim whose answer was lost (then the cloud gives the
        same claim back); a key whose claim answered "nothing" always answers nothing again."""
        claim = ClaimIn.model_construct(
            wait_seconds=wait_seconds, task_id=task_id, exclude=exclude or []
        )
        body = to_json(claim)
        if not exclude:
            body.pop("exclude")  # the body every claim sent before there was passing over
        status, raw = await self._call(
            "POST",
            "/worker/claim",
            body=body,
            idempotency_key=idempotency_key,
            limit_seconds=wait_seconds + self.long_poll_margin,
        )
        return None if status == 204 else _parse(ClaimOut, raw)

    async def claim_plan(self, wait_seconds: float = 0) -> PlanClaimOut | None:
        """The next planning request of the project, or None when none came in time."""
        status, raw = await self._call(
            "POST",
            "/worker/plans/claim",
            body=to_json(PlanClaimIn.model_construct(wait_seconds=wait_seconds)),
            limit_seconds=wait_seconds + self.long_poll_margin,
        )
        return None if status == 204 else _parse(PlanClaimOut, raw)

    async def heartbeat(self, task_id: int, fence: Fence) -> HeartbeatOut:
        """Extend the lease; ``.cancel`` says the user cancelled the task: stop now."""
        return await self._post(f"/worker/tasks/{task_id}/heartbeat", to_json(fence), HeartbeatOut)

    async def status(
        self,
        task_id: int,
        fence: Fence,
        status: ReportedStatus,
        *,
        reason: str | None = None,
        summary: str | None = None,
        question: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskOut:
        body = status_body(fence, status, reason=reason, summary=summary, question=question)
        return await self._send("status", task_id, body, TaskOut, idempotency_key)

    async def log(
        self,
        task_id: int,
        fence: Fence,
        seq: int,
        text: str,
        stream: LogStream = "agent",
        *,
        idempotency_key: str | None = None,
    ) -> LogOut:
        body = log_body(fence, seq, text, stream)
        return await self._send("log", task_id, body, LogOut, idempotency_key)

    async def artifact(
        self,
        task_id: int,
        fence: Fence,
        kind: ArtifactKind,
        content: str,
        media_type: str = "text/plain",
        *,
        idempotency_key: str | None = None,
    ) -> ArtifactOut:
        body = artifact_body(fence, kind, content, media_type)
        return await self._send("artifact", task_id, body, ArtifactOut, idempotency_key)

    async def signals(self, wait: float = 0, after: int = 0) -> SignalsOut:
        """Cancellations of tasks this worker holds since ``after`` (the last ``.cursor``)."""
        _, raw = await self._call(
            "GET",
            "/worker/signals",
            params={"wait": wait, "after": after},
            limit_seconds=wait + self.long_poll_margin,
        )
        return _parse(SignalsOut, raw)

    async def write(
        self,
        kind: str,
        task_id: int | None,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        project_id: int | None = None,
    ) -> BaseModel:
        """Send one write built by :mod:`locusd.cloud.writes` (an outbox entry), as is.

        A payload that does not fit the contract is refused before sending (InvalidRequest,
        not retryable), so a bad entry dies instead of being retried forever."""
        spec = WRITES.get(kind)
        if spec is None:
            raise InvalidRequest(f"unknown kind of cloud write {kind!r}")
        if "{task_id}" in spec.path and task_id is None:
            raise InvalidRequest(f"a {kind} write needs a task id")
        if "{project_id}" in spec.path and project_id is None:
            raise InvalidRequest(f"a {kind} write needs a project id")
        try:
            spec.body.model_validate(payload)
        except ValidationError as exc:
            errors = [
                FieldError(location="body", field=".".join(map(str, e["loc"])), message=e["msg"])
                for e in exc.errors(include_url=False)
            ]
            raise InvalidRequest(
                f"invalid {kind} write: {exc.error_count()} errors", errors=errors
            ) from exc
        return await self._send(
            kind, task_id, payload, spec.response, idempotency_key, project_id=project_id
        )

    async def _send(
        self,
        kind: str,
        task_id: int | None,
        body: Mapping[str, Any],
        model: type[M],
        idempotency_key: str | None,
        *,
        project_id: int | None = None,
    ) -> M:
        path = WRITES[kind].path.format(task_id=task_id, project_id=project_id)
        return await self._post(path, body, model, idempotency_key)


def outbox_sender(client: CloudClient) -> Sender:
    """The outbox's sender: each entry goes out as is, under its own idempotency key."""

    async def send(entry: OutboxEntry) -> None:
        await client.write(
            entry.kind,
            entry.task_id,
            entry.payload,
            idempotency_key=entry.idempotency_key,
            project_id=entry.project_id,
        )

    return send
