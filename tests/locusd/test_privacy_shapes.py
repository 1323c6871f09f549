"""Every secret shape the scrubber claims is masked, each by the net that claims it: the
redactor's token shapes (tested on the redactor alone, so that deleting one pattern fails here
even when a detector would also have caught the fake), each enabled detect-secrets detector
(tested on the detection alone, for the same reason), secret-named environment values and a
repository's ``secret_patterns`` — and the whole :class:`Scrubber` masks all of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import transient_settings

from locusd import privacy
from locusd.privacy import Scrubber
from locusd.runner.redact import MASK, Redactor
from tests.locusd.secretshapes import (
    DETECTOR_SHAPES,
    ENV_NAME,
    ENV_VALUE,
    ENVIRONMENT,
    LOCUS_TOML,
    PREFIX_ONLY,
    REDACTOR_SHAPES,
    REPO_SECRET,
    Fake,
    every_fake,
)

ENABLED = {plugin["name"] for plugin in privacy._PLUGINS["plugins_used"]}


def masked(fake: Fake, out: str) -> bool:
    return fake.secret not in out and MASK in out


@pytest.mark.parametrize("fake", REDACTOR_SHAPES.values(), ids=REDACTOR_SHAPES.keys())
def test_each_token_shape_is_masked_by_the_redactor_itself(fake: Fake) -> None:
    assert masked(fake, Redactor({})(fake.line))


def test_the_redactor_keeps_what_is_not_a_secret() -> None:
    text = "sk-learn is fine; task-ant-1; ghp_short; AKIA-not; lcu_x; -----BEGIN CERTIFICATE-----"
    assert Redactor({})(text) == text


def test_every_enabled_detector_has_a_fake() -> None:
    assert set(DETECTOR_SHAPES) | set(PREFIX_ONLY) == ENABLED


@pytest.mark.parametrize("name", sorted(DETECTOR_SHAPES))
def test_each_detector_finds_its_fake_and_no_other_detector_does(name: str) -> None:
    """Found through the scrubber's own detection; and the fake is one that only this
    detector finds, so dropping it from the scrubber's list fails this test."""
    fake = DETECTOR_SHAPES[name]
    assert any(fake.secret in found for found in privacy._detected(fake.line)), name
    others = {"plugins_used": [{"name": other} for other in sorted(ENABLED - {name})]}
    with transient_settings(others):
        assert not [s for s in scan_line(fake.line) if s.secret_value and len(s.secret_value) > 5]


@pytest.mark.parametrize("name", sorted(PREFIX_ONLY))
def test_prefix_only_detectors_are_covered_by_the_redactor(name: str) -> None:
    """detect-secrets reports only these tokens' prefix (the scrubber drops it as noise): if a
    newer version reports the whole token, this fails and the fake belongs above."""
    fake = PREFIX_ONLY[name]
    with transient_settings({"plugins_used": [{"name": name}]}):
        assert {s.secret_value for s in scan_line(fake.line)} <= {"ghp", "gho", "glpat"}
    assert masked(fake, Redactor({})(fake.line))


def test_environment_values_with_secret_names_are_masked_others_kept() -> None:
    scrub = Scrubber(ENVIRONMENT)
    assert scrub.text(f"{ENV_NAME}={ENV_VALUE}; PATH=/usr/local/bin:/usr/bin") == (
        f"{ENV_NAME}={MASK}; PATH=/usr/local/bin:/usr/bin"
    )


@pytest.mark.parametrize(
    "name", ["GITLAB_TOKEN", "DB_PASSWORD", "STRIPE_SECRET", "MY_API_KEY", "LOCUS_CLOUD_URL"]
)
def test_secret_names_are_recognised(name: str) -> None:
    assert Scrubber({name: "shapeless-value-0815"}).text("x shapeless-value-0815 y") == (
        f"x {MASK} y"
    )


def test_the_repositorys_patterns_are_masked_and_a_broken_config_keeps_the_rest(
    tmp_path: Path,
) -> None:
    (tmp_path / ".locus.toml").write_text(LOCUS_TOML)
    line = f"licence {REPO_SECRET} and {REDACTOR_SHAPES['locus user token'].secret}"
    assert Scrubber.for_checkout(tmp_path, {}).text(line) == f"licence {MASK} and {MASK}"
    (tmp_path / ".locus.toml").write_text("secret_patterns = [")  # the agent broke it
    out = Scrubber.for_checkout(tmp_path, {}).text(line)
    assert REDACTOR_SHAPES["locus user token"].secret not in out


@pytest.mark.parametrize("name", sorted(every_fake()))
def test_the_scrubber_masks_every_shape(name: str, tmp_path: Path) -> None:
    fake = every_fake()[name]
    (tmp_path / ".locus.toml").write_text(LOCUS_TOML)
    scrub = Scrubber.for_checkout(tmp_path, ENVIRONMENT)
    assert masked(fake, scrub.text(fake.line)), name
    assert masked(fake, scrub.patch(f"diff --git a/f b/f\n+{fake.line}\n")), name
