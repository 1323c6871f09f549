"""Where the cloud secret lives: a real keyring when there is one; otherwise a 0600 file, said
out loud. Backends are chosen explicitly with keyring.set_keyring (never the machine's)."""

from __future__ import annotations

import importlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null
from keyring.errors import PasswordDeleteError

from locusd.cloud.credentials import CredentialError, Credentials, CredentialStore

URL = "http://127.0.0.1:8420"


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps entries in a dict: stands in for the OS keyring."""

    priority = -1.0  # never auto-detected, only set explicitly

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


def make(cls: type[KeyringBackend]) -> KeyringBackend:
    """A backend of keyring's own (typed as its base class: their constructors are untyped)."""
    return cls()


def chain(*members: KeyringBackend) -> KeyringBackend:
    """A keyring chainer over exactly these members (the real one asks every installed
    backend), ranked so that it is never auto-detected."""
    cls = type(
        "TestChain", (chainer.ChainerBackend,), {"backends": list(members), "priority": -1.0}
    )
    backend: KeyringBackend = cls()
    return backend


def alt_backend(name: str) -> KeyringBackend:
    """A keyrings.alt backend, constructed but never used: the store must not call it (its
    encrypted one would prompt; here it cannot even start without pycryptodome, so a subclass
    skips its constructor)."""
    cls = getattr(importlib.import_module("keyrings.alt.file"), name)
    quiet = type(f"Quiet{name}", (cls,), {"__init__": KeyringBackend.__init__})
    backend: KeyringBackend = quiet()
    return backend


@pytest.fixture
def use_keyring() -> Iterator[Callable[[KeyringBackend], None]]:
    before = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(before)


def user(url: str = URL, token: str = "s3cret-token") -> Credentials:
    return Credentials(cloud_url=url, kind="user", token=token, user_email="ada@example.com")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_os_keyring_holds_the_secret_when_usable(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    ring = MemoryKeyring()
    use_keyring(ring)
    store = CredentialStore(tmp_path)
    assert store.warning is None
    assert "OS keyring" in store.describe() and "MemoryKeyring" in store.describe()

    store.save(user(URL + "/"))  # the URL is normalised: one entry per cloud
    value = ring.entries[("locus", URL)]
    assert json.loads(value)["token"] == "s3cret-token"
    assert not store.path.exists()  # nothing on disk
    loaded = store.load(URL)
    assert loaded == user()
    assert loaded is not None and loaded.identity == "ada@example.com"
    assert store.load("http://elsewhere") is None

    assert store.delete(URL + "/") is True
    assert store.load(URL) is None and ring.entries == {}
    assert store.delete(URL) is False


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        (lambda: make(fail.Keyring), "no keyring backend is installed"),
        (lambda: make(null.Keyring), "null backend"),
        (chain, "the keyring chain has no backends"),
        (lambda: chain(make(fail.Keyring), alt_backend("PlaintextKeyring")), "base64"),
        (lambda: alt_backend("PlaintextKeyring"), "only base64-encodes"),
        (lambda: alt_backend("EncryptedKeyring"), "would prompt for a password"),
    ],
    ids=["fail", "null", "empty-chain", "unusable-chain", "alt-plaintext", "alt-encrypted"],
)
def test_without_a_usable_keyring_a_0600_file_is_used_and_said(
    use_keyring: Callable[[KeyringBackend], None],
    tmp_path: Path,
    backend: Callable[[], KeyringBackend],
    reason: str,
) -> None:
    use_keyring(backend())
    store = CredentialStore(tmp_path / "cfg")
    path = tmp_path / "cfg" / "credentials.json"
    assert store.warning is not None
    assert store.warning.startswith("no usable OS keyring (")
    assert reason in store.warning
    assert f"the token is stored in {path} (mode 0600)" in store.warning
    assert store.describe() == f"file {path} (mode 0600)"

    store.save(user())
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert store.load(URL) == user()


def test_a_chain_uses_its_best_usable_member_not_a_plaintext_one_ranked_first(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    ring = MemoryKeyring()
    use_keyring(chain(alt_backend("PlaintextKeyring"), ring))
    store = CredentialStore(tmp_path)
    assert store.warning is None and "MemoryKeyring" in store.describe()
    store.save(user())
    assert ("locus", URL) in ring.entries


def test_the_file_keeps_one_entry_per_cloud_and_goes_when_empty(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    use_keyring(make(fail.Keyring))
    store = CredentialStore(tmp_path)
    worker = Credentials(
        cloud_url="https://cloud.example", kind="worker", token="w", worker_name="box", project_id=3
    )
    store.save(user())
    store.save(worker)
    assert json.loads(store.path.read_text())["clouds"].keys() == {URL, "https://cloud.example"}
    assert store.load("https://cloud.example/") == worker and worker.identity == "box"

    assert store.delete(URL) is True
    assert store.load(URL) is None and store.load("https://cloud.example") == worker
    assert store.delete("https://cloud.example") is True
    assert not store.path.exists()
    assert store.delete(URL) is False


def test_the_file_is_written_atomically_and_0600_from_creation(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    use_keyring(make(fail.Keyring))
    store = CredentialStore(tmp_path)
    # An old file others could read is replaced, not rewritten in place.
    store.path.write_text(json.dumps({"version": 1, "clouds": {}}))
    store.path.chmod(0o644)
    before = store.path.stat().st_ino
    old_umask = os.umask(0)  # the mode must not depend on the umask
    try:
        store.save(user())
    finally:
        os.umask(old_umask)
    assert mode(store.path) == 0o600
    assert store.path.stat().st_ino != before  # renamed over, so never half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.json"]  # no temp left


def test_the_token_never_shows_in_a_repr() -> None:
    assert "s3cret-token" not in repr(user())
    assert "s3cret-token" not in str(user())


def test_a_corrupt_file_is_a_clear_error(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    use_keyring(make(fail.Keyring))
    store = CredentialStore(tmp_path)
    store.path.write_text("{not json")
    with pytest.raises(CredentialError, match="cannot read"):
        store.load(URL)
    store.path.write_text(json.dumps({"version": 1, "clouds": {URL: {"kind": "user"}}}))
    with pytest.raises(CredentialError, match="log in again"):
        store.load(URL)


def test_with_a_keyring_a_copy_left_in_the_file_is_removed(
    use_keyring: Callable[[KeyringBackend], None], tmp_path: Path
) -> None:
    use_keyring(make(fail.Keyring))
    CredentialStore(tmp_path).save(user())
    CredentialStore(tmp_path).save(user("http://other"))
    use_keyring(MemoryKeyring())
    store = CredentialStore(tmp_path)
    assert store.load(URL) is None  # the keyring is the store now
    assert store.delete(URL) is True  # logout forgets the old copy too
    store.save(user("http://other", token="new"))  # a new login moves the secret out
    assert not store.path.exists()
    loaded = store.load("http://other")
    assert loaded is not None and loaded.token == "new"
