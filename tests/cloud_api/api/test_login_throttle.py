"""Login throttling through the real server: the REST login and the dashboard's sign-in form
answer 429 with Retry-After after too many failures, the right password included, per account
and per client address; a success clears the account's count."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from cloud_api.api.login_throttle import Attempt, LoginThrottle
from tests.cloud_api.api.test_api_auth import assert_problem, header, login
from tests.cloud_api.dashboard.test_dashboard_http import jar_session
from tests.conftest import Cloud
from tests.support.client import Reply

#: Refusals are sent at once here (the 1 s hold is about load: bench.logins), except in
#: test_concurrent_guesses_are_cut_off_at_the_limit, which keeps the default.
PROMPT = {"login_refusal_seconds": 0}
PER_ACCOUNT = {"login_failures_per_account": 3, "login_failures_per_address": 0, **PROMPT}
PER_ADDRESS = {"login_failures_per_account": 100, "login_failures_per_address": 4, **PROMPT}


def assert_throttled(reply: Reply) -> int:
    body = assert_problem(reply, 429)
    wait = int(header(reply, "Retry-After") or "0")
    assert 0 < wait <= 900, "Retry-After is whole seconds within the window"
    assert f"{wait} s" in body["detail"]
    return wait


@pytest.mark.parametrize("settings_overrides", [PER_ACCOUNT])
async def test_the_right_password_is_refused_while_the_account_is_throttled(cloud: Cloud) -> None:
    first = cloud.first_start
    for _ in range(3):
        assert_problem(await login(cloud.api, first.email, "wrong"), 401)
    assert_throttled(await login(cloud.api, first.email, "wrong"))
    assert_throttled(await login(cloud.api, first.email, first.password))
    # The same count whatever the case of the address.
    assert_throttled(await login(cloud.api, first.email.upper(), first.password))
    # An unknown account is throttled alike (the answer does not tell which exist).
    for _ in range(3):
        assert_problem(await login(cloud.api, "nobody@example.com", "wrong"), 401)
    assert_throttled(await login(cloud.api, "nobody@example.com", "wrong"))


@pytest.mark.parametrize("settings_overrides", [PER_ACCOUNT])
async def test_a_success_clears_the_account_count(cloud: Cloud) -> None:
    first = cloud.first_start
    for _ in range(2):
        assert_problem(await login(cloud.api, first.email, "wrong"), 401)
    (await login(cloud.api, first.email, first.password)).ok()
    for _ in range(3):  # three more failures allowed, not one
        assert_problem(await login(cloud.api, first.email, "wrong"), 401)
    assert_throttled(await login(cloud.api, first.email, "wrong"))


@pytest.mark.parametrize("settings_overrides", [{**PER_ACCOUNT, "login_refusal_seconds": 1.0}])
async def test_concurrent_guesses_are_cut_off_at_the_limit(cloud: Cloud) -> None:
    """Each attempt is charged before its hash: a burst gets 3 checks, not 40."""
    replies = await asyncio.gather(
        *(login(cloud.api, cloud.first_start.email, f"guess {i}") for i in range(40))
    )
    statuses = sorted(r.status for r in replies)
    assert statuses == [401] * 3 + [429] * 37


@pytest.mark.parametrize("settings_overrides", [PER_ADDRESS])
async def test_one_address_is_throttled_across_accounts(cloud: Cloud) -> None:
    for i in range(4):
        assert_problem(await login(cloud.api, f"user{i}@example.com", "wrong"), 401)
    assert_throttled(await login(cloud.api, "another@example.com", "wrong"))
    assert_throttled(await login(cloud.api, cloud.first_start.email, cloud.first_start.password))


async def form_login(cloud: Cloud, password: str) -> tuple[int, str, Any]:
    async with jar_session() as http:
        async with http.get(f"{cloud.url}/login") as page:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
            assert token
        form = {
            "csrf_token": token.group(1),
            "email": cloud.first_start.email,
            "password": password,
            "next": "/",
        }
        async with http.post(f"{cloud.url}/login", data=form, allow_redirects=False) as answer:
            return answer.status, await answer.text(), answer.headers.get("Retry-After")


@pytest.mark.parametrize("template", ["sqlite"], indirect=True)
@pytest.mark.parametrize("settings_overrides", [PER_ACCOUNT])
async def test_the_sign_in_form_says_when_to_try_again(cloud: Cloud) -> None:
    for _ in range(3):
        status, text, _ = await form_login(cloud, "wrong")
        assert status == 401 and "Wrong e-mail or password." in text
    status, text, retry_after = await form_login(cloud, cloud.first_start.password)
    assert status == 429 and retry_after is not None and int(retry_after) > 0
    assert f"Try again in {retry_after} seconds." in text
    # The form and the API share one count.
    assert_throttled(await login(cloud.api, cloud.first_start.email, cloud.first_start.password))


def test_failures_expire_after_the_window_and_retry_after_says_when() -> None:
    """The window with a clock the test moves (the throttle's own parameter, no patching)."""
    now = [1000.0]
    throttle = LoginThrottle(60, per_account=2, per_address=0, clock=lambda: now[0])
    assert isinstance(throttle.charge("a@x", "1.2.3.4"), Attempt)
    now[0] += 20
    assert isinstance(throttle.charge("a@x", "1.2.3.4"), Attempt)
    assert throttle.charge("A@X ", "1.2.3.4") == 40  # the oldest failure leaves in 40 s
    now[0] += 40
    assert isinstance(throttle.charge("a@x", "1.2.3.4"), Attempt)
    assert throttle.charge("a@x", None) == 20


def test_keys_are_bounded() -> None:
    throttle = LoginThrottle(60, per_account=1, per_address=0, max_keys=10)
    for i in range(100):
        assert isinstance(throttle.charge(f"u{i}@x", None), Attempt)
    assert isinstance(throttle.charge("u0@x", None), Attempt), "the oldest keys were dropped"
    assert not isinstance(throttle.charge("u99@x", None), Attempt)


async def test_at_most_max_held_refusals_wait() -> None:
    """Held refusals are bounded: beyond ``max_held`` they go out at once (no descriptors
    piling up under a flood that does not wait for answers)."""
    throttle = LoginThrottle(60, per_account=1, per_address=0, refusal_delay=3600, max_held=2)
    waits = [asyncio.create_task(throttle.slow_refusal()) for _ in range(3)]
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    assert done == {waits[2]} and pending == set(waits[:2])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert throttle._held == 0
