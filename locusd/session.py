"""The daemon's cloud session: which cloud, which secret (kept by the credential store), the
clients it makes from them, and cloud errors turned into protocol errors.

Two kinds of login: a **user** (email + password, or a user token) can list and create tasks and
lets the daemon mint a **worker token** per project it serves (kept in the store too); a
**worker token** alone serves exactly its project.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from locusd.cloud.client import CloudClient
from locusd.cloud.credentials import Credentials, CredentialStore
from locusd.cloud.errors import (
    AuthError,
    CloudError,
    CloudUnavailable,
    Conflict,
    NotFound,
    ServerError,
)
from locusd.cloud.outbox import OutboxEntry
from locusd.cloudurl import normalise_url, url_problem
from locusd.protocol.errors import Code, LocusError
from locusd.protocol.messages import AuthStatus, LoginParams

T = TypeVar("T")


def _project_key(cloud_url: str, project_id: int) -> str:
    """The store's key for the worker token this daemon minted for a project."""
    return f"{cloud_url}/#worker/project/{project_id}"


class CloudSession:
    def __init__(self, store: CredentialStore, state_dir: Path, default_url: str) -> None:
        self.store = store
        self._pointer = state_dir / "cloud.json"  # which cloud (not a secret)
        self.default_url = normalise_url(default_url)
        self._workers: dict[tuple[str, int], CloudClient] = {}

    @property
    def cloud_url(self) -> str:
        try:
            return str(json.loads(self._pointer.read_text())["cloud_url"])
        except (OSError, ValueError, KeyError):
            return self.default_url

    def credentials(self) -> Credentials | None:
        return self.store.load(self.cloud_url)

    def status(self) -> AuthStatus:
        creds = self.credentials()
        return AuthStatus(
            logged_in=creds is not None,
            cloud_url=self.cloud_url,
            kind=creds.kind if creds else None,
            identity=creds.identity if creds else None,
            store=self.store.describe(),
            warning=self.store.warning,
        )

    async def login(self, params: LoginParams) -> AuthStatus:
        problem = url_problem(params.cloud_url)
        if problem is not None:
            raise LocusError(Code.INVALID_ARGUMENT, f"the cloud URL {problem}")
        url = normalise_url(params.cloud_url)
        if params.token:
            async with CloudClient(url, params.token) as client:
                me = await mapped(client.me())
            creds = Credentials(
                cloud_url=url,
                kind="worker" if me.user is None else "user",
                token=params.token,
                user_email=me.user.email if me.user else None,
                worker_name=me.worker_name,
                project_id=me.project_id,
            )
        elif params.email and params.password:
            login = await mapped(CloudClient.login(url, params.email, params.password))
            creds = Credentials(
                cloud_url=url, kind="user", token=login.token, user_email=login.user.email
            )
        else:
            raise LocusError(
                Code.INVALID_ARGUMENT, "log in with email and password, or with a token"
            )
        self.store.save(creds)
        self._pointer.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._pointer.write_text(json.dumps({"cloud_url": url}))
        return self.status()

    async def logout(self) -> AuthStatus:
        creds = self.credentials()
        if creds is not None and creds.kind == "user":
            try:
                async with CloudClient(creds.cloud_url, creds.token) as client:
                    await client.logout()
            except CloudError:
                pass  # forgetting the secret locally is what matters
        self.store.delete(self.cloud_url)
        await self.close()
        return self.status()

    def client(self) -> CloudClient:
        creds = self.credentials()
        if creds is None:
            raise LocusError(Code.AUTH_REQUIRED, f"not logged in to {self.cloud_url}: locus login")
        return CloudClient(creds.cloud_url, creds.token)

    async def worker_client(self, project_id: int) -> CloudClient:
        """A client holding a worker token for ``project_id``: the login itself when it is a
        worker token, else one minted once with the user's login and kept in the store."""
        creds = self.credentials()
        if creds is None:
            raise LocusError(Code.AUTH_REQUIRED, f"not logged in to {self.cloud_url}: locus login")
        cached = self._workers.get((creds.cloud_url, project_id))
        if cached is not None:
            return cached
        if creds.kind == "worker":
            client = CloudClient(creds.cloud_url, creds.token)
            self._workers[creds.cloud_url, project_id] = client
            return client
        key = _project_key(creds.cloud_url, project_id)
        kept = self.store.load(key)
        if kept is None:
            async with CloudClient(creds.cloud_url, creds.token) as user:
                name = f"{socket.gethostname()}-locusd"
                minted = await mapped(user.create_worker_token(project_id, name))
            kept = Credentials(
                cloud_url=key,
                kind="worker",
                token=minted.token,
                worker_name=name,
                project_id=project_id,
            )
            self.store.save(kept)
        client = CloudClient(creds.cloud_url, kept.token)
        self._workers[creds.cloud_url, project_id] = client
        return client

    async def send(self, entry: OutboxEntry, project_id: int) -> None:
        """The outbox's sender for an entry about ``project_id`` (a task's, or the graph)."""
        client = await self.worker_client(project_id)
        await client.write(
            entry.kind,
            entry.task_id,
            entry.payload,
            idempotency_key=entry.idempotency_key,
            project_id=project_id,
        )

    async def close(self) -> None:
        for client in self._workers.values():
            await client.close()
        self._workers.clear()


async def mapped(call: Awaitable[T], *, move: str | None = None) -> T:
    """A cloud call whose errors come back as protocol errors the client can act on. ``move``
    ("approve task 12") marks a person's move of a task: a 409 (its status does not allow the
    move) then says so, with the cloud's from, to and what applies instead."""
    try:
        return await call
    except CloudError as exc:
        raise _protocol_error(exc, move) from None


def _protocol_error(exc: CloudError, move: str | None) -> LocusError:
    if isinstance(exc, AuthError):
        return LocusError(Code.AUTH_EXPIRED, f"the cloud refused the login: {exc}")
    if isinstance(exc, NotFound):
        return LocusError(Code.TASK_NOT_FOUND, str(exc))
    if isinstance(exc, CloudUnavailable | ServerError):
        return LocusError(Code.CLOUD_UNAVAILABLE, f"the cloud is unavailable: {exc}")
    if move is not None and isinstance(exc, Conflict):
        return LocusError(Code.INVALID_TASK_STATE, f"cannot {move}: {exc.detail or exc}")
    return LocusError(Code.INVALID_ARGUMENT, str(exc))
