"""Remote fingerprints: every spelling of a remote has one form, and that form is its own
fingerprint (what the API returns can be sent back)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_api.domain.remotes import InvalidRemote, fingerprint

SAME = [
    "git@github.com:Acme/App.git",
    "https://github.com/Acme/App",
    "https://user@GitHub.com/Acme/App.git/",
    "ssh://git@github.com:22/Acme/App.git",
    "github.com/Acme/App",
    "github.com/Acme/App.git",
]


@pytest.mark.parametrize("spelling", SAME)
def test_spellings_of_one_remote_share_a_fingerprint(spelling: str) -> None:
    assert fingerprint(spelling) == "github.com/Acme/App"


@pytest.mark.parametrize("not_a_remote", ["/home/ada/app", "./app", "app", "github.com", ""])
def test_paths_and_bare_names_are_refused(not_a_remote: str) -> None:
    with pytest.raises(InvalidRemote):
        fingerprint(not_a_remote)


_part = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.",
    min_size=1,
    max_size=12,
).filter(lambda p: p.strip(".") != "" and not p.endswith(".git"))


@given(
    host=st.from_regex(r"[a-z0-9]{1,8}\.(com|org|example)", fullmatch=True),
    owner=_part,
    repo=_part,
    form=st.sampled_from(
        ["https://{h}/{o}/{r}.git", "git@{h}:{o}/{r}.git", "ssh://git@{h}/{o}/{r}"]
    ),
)
def test_a_fingerprint_is_its_own_fingerprint(host: str, owner: str, repo: str, form: str) -> None:
    once = fingerprint(form.format(h=host, o=owner, r=repo))
    assert fingerprint(once) == once
