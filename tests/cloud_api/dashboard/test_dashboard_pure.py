"""The dashboard's pure pieces: the diff view model, Markdown and time rendering, and the CSRF
rules — no server, no browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from cloud_api.dashboard import diffs, session
from cloud_api.dashboard.render import ago, markdown, render
from cloud_api.dashboard.views.board import actions_for
from cloud_api.dashboard.web import local_path

MODIFIED = """\
diff --git a/app/cart.py b/app/cart.py
index 1111111..2222222 100644
--- a/app/cart.py
+++ b/app/cart.py
@@ -10,3 +10,4 @@ class Cart:
     def total(self):
-        return sum(self.items)
+        # "<script>alert(1)</script>"
+        return round(sum(self.items), 2)
     # end
\\ No newline at end of file
"""

MIXED = """\
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
diff --git a/gone.md b/gone.md
deleted file mode 100644
index 4444444..0000000
--- a/gone.md
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/old/name.py b/new/name.py
similarity index 100%
rename from old/name.py
rename to new/name.py
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..5555555
Binary files /dev/null and b/logo.png differ
"""


def test_a_modified_file_has_numbered_coloured_escaped_lines() -> None:
    diff = diffs.parse(MODIFIED)
    assert diff.error is None
    (file,) = diff.files
    assert (file.path, file.change, file.added, file.removed) == ("app/cart.py", "modified", 2, 1)
    (hunk,) = file.hunks
    assert hunk.header == "@@ -10,3 +10,4 @@ class Cart:"
    kinds = [(line.kind, line.old, line.new) for line in hunk.lines]
    assert kinds == [
        ("context", 10, 10),
        ("removed", 11, None),
        ("added", None, 11),
        ("added", None, 12),
        ("context", 12, 13),
        ("note", None, None),
    ]
    comment, code = hunk.lines[2].html, hunk.lines[3].html
    assert "<script>" not in comment and "&lt;script&gt;" in comment
    assert '<span class="k">return</span>' in code  # Python colouring
    assert '<span class="nb">round</span>' in code
    assert hunk.lines[5].html == "No newline at end of file"
    assert (diff.added, diff.removed) == (2, 1)


def test_added_deleted_renamed_and_binary_files() -> None:
    files = {f.path: f for f in diffs.parse(MIXED).files}
    assert files["new.txt"].change == "added"
    assert [line.kind for line in files["new.txt"].hunks[0].lines] == ["added"]
    assert files["gone.md"].change == "deleted"
    assert files["new/name.py"].change == "renamed"
    assert files["new/name.py"].old_path == "old/name.py"
    assert files["logo.png"].binary and files["logo.png"].hunks == []


def test_text_that_is_not_a_diff_is_kept_as_raw_text() -> None:
    broken = "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n-only one line\n"
    diff = diffs.parse(broken)
    assert diff.files == [] and diff.raw == broken
    assert diff.error is not None and "not a unified diff" in diff.error


def test_huge_diffs_are_escaped_but_not_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diffs, "MAX_HIGHLIGHTED_LINES", 2)
    (line,) = [ln for ln in diffs.parse(MODIFIED).files[0].hunks[0].lines if ln.kind == "added"][:1]
    assert "<span" not in line.html and "&lt;script&gt;" in line.html


def test_markdown_shows_raw_html_as_text_and_drops_unsafe_links() -> None:
    html = markdown(
        "# Title\n\n<img src=x onerror=alert(1)>\n\n[ok](https://example.com) "
        "[bad](javascript:alert(1)) **bold**\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<h1>Title</h1>" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<a href="https://example.com">ok</a>' in html
    assert "javascript:" not in html.replace("[bad](javascript:alert(1))", "")
    assert 'href="javascript' not in html
    assert "<strong>bold</strong>" in html and "<table>" in html


def test_templates_escape_what_they_are_given() -> None:
    page = {"code": 404, "title": "<b>x</b>", "detail": "<script>", "hint": "h", "csrf": "c"}
    out = render("error.html", nav={}, visitor=None, flash="<i>", **page)
    body = out.split("</head>")[1]
    assert "&lt;b&gt;x&lt;/b&gt;" in body and "&lt;i&gt;" in body
    assert "<script>" not in body and "<i>" not in body


def test_ago_is_coarse_and_never_negative() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert ago(now - timedelta(seconds=5), now) == "5 s ago"
    assert ago(now - timedelta(minutes=3), now) == "3 min ago"
    assert ago(now - timedelta(hours=2), now) == "2 h ago"
    assert ago(now - timedelta(days=9), now) == "9 d ago"
    assert ago(now + timedelta(seconds=3), now) == "just now"
    assert ago(None) == "never"


def test_card_moves_follow_the_state_machine() -> None:
    assert [m["name"] for m in actions_for("backlog")] == ["queue", "cancel"]
    assert [m["name"] for m in actions_for("verification")] == ["approve", "cancel"]
    assert [m["name"] for m in actions_for("failed")] == ["retry"]
    assert actions_for("done") == []
    assert {m["to"] for m in actions_for("running")} == {"cancelled"}


def _request(cookies: dict[str, str], headers: dict[str, str] | None = None) -> web.Request:
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    all_headers = {"Host": "dash.example", **({"Cookie": cookie} if cookie else {})}
    return make_mocked_request("POST", "/tasks/1/queue", headers={**all_headers, **(headers or {})})


def test_csrf_token_is_bound_to_the_session_and_the_origin() -> None:
    mine = _request({session.SESSION_COOKIE: "secret-a"})
    token = session.csrf_token(mine)
    session.check_csrf(mine, token)

    theirs = _request({session.SESSION_COOKIE: "secret-b"})
    assert session.csrf_token(theirs) != token
    with pytest.raises(session.CsrfRefused):
        session.check_csrf(theirs, token)
    with pytest.raises(session.CsrfRefused):
        session.check_csrf(mine, None)
    with pytest.raises(session.CsrfRefused):
        session.check_csrf(_request({}), token)
    foreign = _request({session.SESSION_COOKIE: "secret-a"}, {"Origin": "https://evil.example"})
    with pytest.raises(session.CsrfRefused, match="another site"):
        session.check_csrf(foreign, token)
    same = _request({session.SESSION_COOKIE: "secret-a"}, {"Origin": "http://dash.example"})
    session.check_csrf(same, token)
    header = _request({session.SESSION_COOKIE: "secret-a"}, {session.CSRF_HEADER: token})
    session.check_csrf(header, None)


def test_return_addresses_stay_on_this_site() -> None:
    for kept in ("/", "/tasks/1", "/projects/2?label=a%20b"):
        assert local_path(kept, "/home") == kept
    # Browsers drop tabs and newlines and read a backslash as a slash: each of these leaves.
    for crafted in (
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/a\\..\\\\evil.example",
        "https://evil.example",
        "",
        None,
    ):
        assert local_path(crafted, "/home") == "/home", crafted
