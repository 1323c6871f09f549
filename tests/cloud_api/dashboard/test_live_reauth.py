"""The dashboard's live stream (what the board's EventSource follows) ends when the person
signs out, and the browser's automatic reconnect is then sent to the sign-in page, which is not
an event stream, so it stops there."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.cloud_api.api.test_stream_reauth import CHECKS, END_TIMEOUT, Lines
from tests.cloud_api.dashboard.test_dashboard_http import jar_session, sign_in
from tests.conftest import Cloud

pytestmark = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"sse_recheck_seconds": 0.05, "sse_keepalive_seconds": 0.05}


async def test_live_board_stream_ends_when_the_person_signs_out(cloud: Cloud) -> None:
    live = f"{cloud.url}/projects/{cloud.project_id}/live"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=END_TIMEOUT * 2)
    async with jar_session() as http:
        (await sign_in(http, cloud, "/")).release()
        async with http.get(live, timeout=timeout) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            lines = Lines(stream)
            await lines.keepalives(CHECKS)
            # Sign out in the same browser (another tab): the session token is revoked.
            async with http.get(f"{cloud.url}/projects/{cloud.project_id}") as page:
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
                assert csrf
            form = {"csrf_token": csrf.group(1)}
            async with http.post(f"{cloud.url}/logout", data=form, allow_redirects=False) as out:
                assert out.status == 303
            await lines.ends()
        async with http.get(live, allow_redirects=False) as again:
            assert again.status == 303 and again.headers["Location"].startswith("/login")
