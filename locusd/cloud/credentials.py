"""Where the daemon's cloud secret lives: the OS keyring when there is a real one, otherwise a
0600 file — and then it says so (``CredentialStore.warning``), never silently.

A keyring backend counts as usable only if it actually protects the secret without asking
anything: ``keyring.backends.fail`` (nothing installed) and ``null`` are not, nor is a chainer
with nothing usable in it, nor anything from ``keyrings.alt`` (its plaintext backend only
base64-encodes; its encrypted one prompts for a password, which hangs or raises EOFError in a
daemon). The store never prompts.

Keyring entries: service ``locus``, username = the cloud URL, value = the credentials as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Literal

import keyring
import keyring.errors
import platformdirs
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from locusd.cloudurl import normalise_url

SERVICE = "locus"
FILE_NAME = "credentials.json"


class CredentialError(Exception):
    """The secret could not be saved, read or removed; the message says where and why."""


class Credentials(BaseModel):
    """A login to one cloud: a user session or a worker token."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    cloud_url: str
    kind: Literal["user", "worker"]
    token: str = Field(repr=False)
    user_email: str | None = None
    worker_name: str | None = None
    project_id: int | None = None

    @property
    def identity(self) -> str | None:
        """The user's e-mail or the worker's name, for status lines."""
        return self.user_email if self.kind == "user" else self.worker_name


def _unusable_reason(backend: KeyringBackend) -> str | None:
    """Why this backend must not hold the secret, or None if it may."""
    if isinstance(backend, fail.Keyring):
        return "no keyring backend is installed"
    if isinstance(backend, null.Keyring):
        return "the keyring is disabled (null backend)"
    alt = next((c for c in type(backend).__mro__ if c.__module__.startswith("keyrings.alt")), None)
    if alt is not None:
        if alt.__name__ == "PlaintextKeyring":
            return "keyrings.alt's PlaintextKeyring only base64-encodes the secret"
        if "Encrypted" in alt.__name__:
            return f"keyrings.alt's {alt.__name__} would prompt for a password"
        return f"keyrings.alt's {alt.__name__} is not secure storage"
    return None


def choose_backend(backend: KeyringBackend) -> tuple[KeyringBackend | None, str | None]:
    """The backend to use (a chainer is resolved to its best usable member), or None and why.

    A chainer writes to its first member that accepts the write, so with a plaintext backend
    ranked first it would put the secret there: pick the usable member ourselves instead."""
    if isinstance(backend, chainer.ChainerBackend):
        members: list[KeyringBackend] = list(backend.backends)
        reasons = []
        for member in members:
            reason = _unusable_reason(member)
            if reason is None:
                return member, None
            reasons.append(reason)
        return None, "; ".join(reasons) or "the keyring chain has no backends"
    reason = _unusable_reason(backend)
    return (None, reason) if reason else (backend, None)


def _backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


class CredentialStore:
    """Save, load and delete the credentials of each cloud, in the keyring or in a 0600 file.

    ``backend`` defaults to ``keyring.get_keyring()`` (what the user configured, or what
    keyring detected); ``config_dir`` defaults to platformdirs' user config dir for ``locus``.
    """

    def __init__(
        self, config_dir: Path | None = None, *, backend: KeyringBackend | None = None
    ) -> None:
        directory = config_dir or Path(platformdirs.user_config_dir("locus"))
        self.path = directory / FILE_NAME
        self.keyring, reason = choose_backend(backend or keyring.get_keyring())
        self.warning: str | None = None
        if self.keyring is None:
            self.warning = (
                f"no usable OS keyring ({reason}): the token is stored in {self.path} (mode 0600)"
            )

    def describe(self) -> str:
        """Where the secret is kept, for ``locus auth status``."""
        if self.keyring is not None:
            return f"OS keyring ({_backend_name(self.keyring)})"
        return f"file {self.path} (mode 0600)"

    def save(self, creds: Credentials) -> None:
        url = normalise_url(creds.cloud_url)
        creds = creds.model_copy(update={"cloud_url": url})
        if self.keyring is None:
            entries = self._read_file()
            entries[url] = creds.model_dump(mode="json")
            self._write_file(entries)
            return
        try:
            self.keyring.set_password(SERVICE, url, creds.model_dump_json())
        except keyring.errors.KeyringError as exc:
            raise CredentialError(f"cannot save the token in {self.describe()}: {exc}") from exc
        self._forget_in_file(url)  # a copy from a time without a keyring must not linger

    def load(self, cloud_url: str) -> Credentials | None:
        url = normalise_url(cloud_url)
        if self.keyring is None:
            raw: Any = self._read_file().get(url)
        else:
            try:
                text = self.keyring.get_password(SERVICE, url)
            except keyring.errors.KeyringError as exc:
                raise CredentialError(
                    f"cannot read the token from {self.describe()}: {exc}"
                ) from exc
            try:
                raw = None if text is None else json.loads(text)
            except ValueError as exc:
                raise CredentialError(
                    f"the keyring entry {SERVICE}/{url} is not Locus credentials: log in again"
                ) from exc
        if raw is None:
            return None
        try:
            return Credentials.model_validate(raw)
        except ValidationError as exc:
            raise CredentialError(
                f"the stored credentials for {url} are unreadable ({exc.error_count()} errors):"
                " log in again"
            ) from exc

    def delete(self, cloud_url: str) -> bool:
        """Forget the cloud's secret everywhere it may be (keyring and file); True if it was."""
        url = normalise_url(cloud_url)
        found = False
        if self.keyring is not None:
            try:
                if self.keyring.get_password(SERVICE, url) is not None:
                    self.keyring.delete_password(SERVICE, url)
                    found = True
            except keyring.errors.KeyringError as exc:
                raise CredentialError(
                    f"cannot delete the token from {self.describe()}: {exc}"
                ) from exc
        return self._forget_in_file(url) or found

    # --- the file ------------------------------------------------------------------------

    def _forget_in_file(self, url: str) -> bool:
        """Drop the URL's entry from the file, if there is one (also when a keyring is in use:
        the file may be left from a time without one)."""
        if not self.path.exists():
            return False
        entries = self._read_file()
        if entries.pop(url, None) is None:
            return False
        self._write_file(entries)
        return True

    def _read_file(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CredentialError(f"cannot read {self.path}: {exc}") from exc
        clouds = data.get("clouds") if isinstance(data, dict) else None
        if not isinstance(clouds, dict):
            raise CredentialError(f"{self.path} is not a Locus credentials file")
        return clouds

    def _write_file(self, entries: dict[str, Any]) -> None:
        """Atomically: a 0600 temp file in the same directory, fsynced, renamed over the old
        one. A crash leaves the old file or the new one, never half of either, and the secret
        is never readable by others, not even for a moment."""
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"version": 1, "clouds": entries}, indent=2, sort_keys=True)
        tmp = directory / f".{FILE_NAME}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise CredentialError(f"cannot write {self.path}: {exc}") from exc


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
