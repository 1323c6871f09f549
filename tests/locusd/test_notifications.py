"""Desktop notifications (locusd/notifications.py) with a real program: a stand-in notify-send
(tests/locusd/notifyprog.py) that records its argv, environment and directory. Hostile text —
shell syntax, markup, controls, 10 kB — reaches it as one inert, escaped, capped argument; a
failing or hanging program is logged, never raised. The daemon's side (one notification per
event, to the desktop and to every client) is tests/locusd/test_daemon_notify.py."""

from __future__ import annotations

import asyncio
import logging
import os
import unicodedata
from pathlib import Path

import pytest

from locusd.config import ConfigError, load
from locusd.notifications import (
    APPLESCRIPT,
    BODY_LIMIT,
    TITLES,
    Desktop,
    Notifier,
    argv,
    body,
    clean,
    find,
)
from locusd.protocol.messages import NeedsYou
from tests.locusd.notifyprog import FakeProgram, fake_program

pytestmark = pytest.mark.timeout(60)
TEN_KB = "A" * 10_000


def hostile(sentinel: Path) -> str:
    """What an agent could ask: shell syntax, markup, terminal and bidi controls, a NUL, an
    option-looking line, and 10 kB."""
    return (
        f"$(rm -rf ~) `touch {sentinel}`; touch {sentinel} | <b>bold</b> & <a href='x'>y</a>"
        "\x1b[31mred\x1b[0m\x00\x07\u202eevil\u200b\ud800\r\nsecond line\n\n\n--help\n" + TEN_KB
    )


def note(text: str, kind: str = "question", title: str = "Fix <i>median</i> & co") -> NeedsYou:
    return NeedsYou.model_validate(
        {"run_id": "7-local-1", "kind": kind, "title": title, "repo": "/src/app", "text": text}
    )


def control_free(text: str) -> bool:
    return all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs") for c in text)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The $HOME the program is given: a `rm -rf ~` run by a shell would empty it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep").write_text("still here")
    return home


def environ(home: Path, program: FakeProgram) -> dict[str, str]:
    return {
        "PATH": f"{program.directory}:{os.environ['PATH']}",
        "HOME": str(home),
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        "ANTHROPIC_API_KEY": "sk-ant-must-not-leave",
        "OPENAI_API_KEY": "sk-must-not-leave",
        "LOCUS_TOKEN": "secret",
    }


# --- finding the program --------------------------------------------------------------------


def test_notify_send_is_found_on_the_path_and_its_absence_is_explained(tmp_path: Path) -> None:
    program = fake_program(tmp_path)
    found = find("linux", str(program.directory))
    assert found == Desktop("notify-send", str(program.directory / "notify-send"))
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = find("linux", str(empty))
    assert missing.program is None and missing.reason is not None
    assert "notify-send is not on the daemon's PATH" in missing.reason
    assert "install libnotify" in missing.reason


def test_macos_uses_osascript_and_other_systems_say_why_not(tmp_path: Path) -> None:
    program = fake_program(tmp_path, "osascript")
    assert find("darwin", str(program.directory)) == Desktop(
        "osascript", str(program.directory / "osascript")
    )
    windows = find("win32", str(program.directory))
    assert windows.program is None and windows.reason is not None and "win32" in windows.reason


def test_the_status_says_whether_and_why_not() -> None:
    here = Notifier(Desktop("notify-send", "/usr/bin/notify-send"), {})
    assert here.status(True).desktop and here.status(True).program == "notify-send"
    off = here.status(False)
    assert not off.desktop and off.reason and "[notifications] desktop = false" in off.reason
    none = Notifier(Desktop(reason="no notify-send"), {}).status(True)
    assert not none.desktop and none.reason == "no notify-send"


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('desktop = "maybe"', "notifications.desktop: Input should be a valid boolean"),
        ("desktp = false", "notifications.desktp: Extra inputs are not permitted"),
    ],
)
def test_a_bad_setting_names_its_key(tmp_path: Path, toml: str, said: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[notifications]\n{toml}\n")
    with pytest.raises(ConfigError, match=f"^{config}: {said}"):
        load(config)
    config.write_text("[notifications]\ndesktop = false\n")
    assert load(config).notifications.desktop is False


# --- the text ---------------------------------------------------------------------------------


def test_the_body_is_cleaned_and_capped(tmp_path: Path) -> None:
    text = body(note(hostile(tmp_path / "x")))
    assert len(text) <= BODY_LIMIT and text.endswith("…")
    assert control_free(text)
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    first, second, third, *_ = text.split("\n")
    assert first == "Fix <i>median</i> & co"  # the task's title, then the agent's lines
    assert second.startswith("$(rm -rf ~)") and second.endswith("[31mred[0mevil")
    assert third == "second line"  # blank lines and CRs squeezed out
    assert clean("  a \t b \u2028 c  \n\n d\r\n") == "a b c\nd"


def test_notify_send_gets_markup_escaped_after_a_double_dash(tmp_path: Path) -> None:
    command = argv("notify-send", "/usr/bin/notify-send", note(hostile(tmp_path / "x")))
    assert command[:3] == ["/usr/bin/notify-send", "--app-name=Locus", "--"]
    title, text = command[3:]
    assert title == TITLES["question"]  # our words only: a title is never markup-escaped
    assert "<" not in text and ">" not in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href='x'&gt;" in text
    assert text.startswith("Fix &lt;i&gt;median&lt;/i&gt; &amp; co\n")
    assert "\n--help\n" in text  # inert: after "--", in the body's argument


def test_osascript_gets_the_texts_as_arguments_never_as_script(tmp_path: Path) -> None:
    asked = note('say "hi" & do shell script "touch /tmp/x" -- \\', kind="approval")
    command = argv("osascript", "/usr/bin/osascript", asked)
    script = [part for line in APPLESCRIPT for part in ("-e", line)]
    assert command == ["/usr/bin/osascript", *script, TITLES["approval"], body(asked)]
    assert not TITLES["approval"].startswith("-"), "the first argument ends osascript's options"
    assert body(asked).endswith('say "hi" & do shell script "touch /tmp/x" -- \\')  # no markup


# --- the program, run -------------------------------------------------------------------------


async def test_hostile_text_reaches_the_program_as_one_inert_argument(
    tmp_path: Path, home: Path
) -> None:
    program = fake_program(tmp_path)
    sentinel = tmp_path / "pwned"
    notifier = Notifier(find("linux", program.directory.as_posix()), environ(home, program))
    asked = note(hostile(sentinel))
    notifier.raise_(asked)
    await notifier.settle()

    (call,) = program.calls()
    assert call["argv"] == argv("notify-send", "notify-send", asked)[1:]
    assert not sentinel.exists(), "a shell ran the agent's text"
    assert (home / "keep").read_text() == "still here"
    # Only the desktop's variables: no API key or token of the daemon's goes along.
    assert set(call["env"]) <= {"PATH", "HOME", "DBUS_SESSION_BUS_ADDRESS", "LC_CTYPE"}
    assert {"HOME", "DBUS_SESSION_BUS_ADDRESS", "PATH"} <= set(call["env"])
    assert call["cwd"] == "/"
    assert notifier.status(True).last_error is None


async def test_a_failing_program_is_logged_and_said_never_raised(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tail = "sys.stderr.write('Cannot autolaunch D-Bus\\x1b[2J\\n'); sys.exit(3)"
    program = fake_program(tmp_path, tail=tail)
    notifier = Notifier(find("linux", str(program.directory)), environ(home, program))
    with caplog.at_level(logging.WARNING, logger="locusd.notifications"):
        notifier.raise_(note("why?"))
        await notifier.settle()
    assert len(program.calls()) == 1
    error = notifier.status(True).last_error
    assert error == "notify-send exited with status 3: Cannot autolaunch D-Bus[2J"
    assert [r.getMessage() for r in caplog.records] == [f"desktop notification not shown: {error}"]


async def test_a_program_gone_since_the_start_is_logged(tmp_path: Path, home: Path) -> None:
    program = fake_program(tmp_path)
    notifier = Notifier(find("linux", str(program.directory)), environ(home, program))
    (program.directory / "notify-send").unlink()
    notifier.raise_(note("why?"))
    await notifier.settle()
    error = notifier.status(True).last_error
    assert error is not None and error.startswith("notify-send could not start:")


async def test_a_hanging_program_is_killed(tmp_path: Path, home: Path) -> None:
    program = fake_program(tmp_path, tail="import time; time.sleep(600)")
    desktop = find("linux", str(program.directory))
    notifier = Notifier(desktop, environ(home, program), timeout=0.5)
    notifier.raise_(note("why?"))
    await notifier.settle()
    assert len(program.calls()) == 1
    assert notifier.status(True).last_error == "notify-send did not finish within 0.5 s (killed)"


def test_notes_raised_outside_an_event_loop_wait_for_one(tmp_path: Path, home: Path) -> None:
    program = fake_program(tmp_path)
    notifier = Notifier(find("linux", str(program.directory)), environ(home, program))
    notifier.raise_(note("recovered while the daemon started"))
    assert program.calls() == []

    async def later() -> None:
        notifier.release()
        await notifier.settle()

    asyncio.run(later())
    assert len(program.calls()) == 1
    asyncio.run(later())
    assert len(program.calls()) == 1, "a held note is raised once"
