"""Secrets: password hashing (slow, argon2id) and API tokens (random, stored as sha256).

Tokens carry 256 bits of randomness, so a fast hash is safe and keeps the per-request lookup
cheap; passwords are guessable, so they get argon2's deliberately slow hash.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIXES = {"user": "lcu_", "worker": "lcw_"}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(scope: str) -> tuple[str, str, str]:
    """Returns (token shown once, its hash to store, a short prefix to recognise it)."""
    token = TOKEN_PREFIXES[scope] + secrets.token_urlsafe(32)
    return token, hash_token(token), token[:12]


#: A dummy hash verified when a login names an unknown user, so timing does not tell.
DUMMY_PASSWORD_HASH = _hasher.hash(secrets.token_urlsafe(16))
