"""Secrets: password hashing (slow, argon2id) and API tokens (random, stored as sha256).

Tokens carry 256 bits of randomness, so a fast hash is safe and keeps the per-request lookup
cheap; passwords are guessable, so they get argon2's deliberately slow hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIXES = {"user": "lcu_", "worker": "lcw_"}
T = TypeVar("T")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordWork:
    """Runs argon2 off the event loop, at most ``limit`` hashes at once.

    One hash costs ~90 ms of CPU: on the loop, a flood of logins would stall every heartbeat
    and let the reaper take live workers' leases. In threads (argon2 releases the GIL) the loop
    keeps answering; the semaphore bounds how many cores a flood can take, and logins beyond
    it wait for a slot without blocking anything else.
    """

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="argon2")
        #: Calls waiting for a slot or running (what a flood has queued; tests watch it).
        self.pending = 0

    async def run(self, work: Callable[..., T], *args: object) -> T:
        self.pending += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self.pending -= 1

    async def hash(self, password: str) -> str:
        return await self.run(hash_password, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self.run(verify_password, password_hash, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(scope: str) -> tuple[str, str, str]:
    """Returns (token shown once, its hash to store, a short prefix to recognise it)."""
    token = TOKEN_PREFIXES[scope] + secrets.token_urlsafe(32)
    return token, hash_token(token), token[:12]


#: A dummy hash verified when a login names an unknown user, so timing does not tell.
DUMMY_PASSWORD_HASH = _hasher.hash(secrets.token_urlsafe(16))
