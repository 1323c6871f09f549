"""The rendered service files, checked by the real tools: ``systemd-analyze verify --user`` (any
stderr output is a failure), systemd's own parse of the unit (``systemd --test --user`` dumps the
argv and environment it would use), ``plistlib`` and ``plutil -lint`` where it exists.

Why systemd itself and not only a parser written here: quoting bugs are exactly the ones a
hand-written parser shares with the renderer it checks. The Python parser below still runs
everywhere (systemd-analyze is missing on macOS) and documents the rules.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locusd.service import (
    LAUNCHD_LABEL,
    install,
    launchd_plist,
    quote_exec_args,
    systemd_unit,
)
from locusd.service.units import ENV_EXECUTABLE, STOP_TIMEOUT_SEC
from tests.support.programs import missing, required

PYTHON = os.path.abspath(sys.executable)
EXEC = [PYTHON, "-m", "locusd", "serve"]

#: systemd is Linux's: its checks skip elsewhere (macOS); on Linux scripts/test.sh installs it,
#: and a missing systemd fails the checks that need it (tests/support/programs.py).
LINUX = sys.platform == "linux"
needs_analyze = pytest.mark.skipif(not LINUX, reason="systemd is Linux-only")


# --- a model of systemd's unit syntax (systemd.syntax(7)), for the parts the renderer uses ------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections → (key, raw value) in order. Lines are split on "\\n" only, as systemd does."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.split("\n"):
        stripped = line.strip(" \t")
        if not stripped or stripped[0] in "#;":
            continue
        assert not stripped.endswith("\\"), f"unexpected line continuation: {line!r}"
        if stripped.startswith("["):
            assert stripped.endswith("]"), line
            current = sections.setdefault(stripped[1:-1], [])
            continue
        assert current is not None, f"assignment outside a section: {line!r}"
        key, sep, value = stripped.partition("=")
        assert sep, f"not an assignment: {line!r}"
        current.append((key.strip(), value.strip(" \t")))
    return sections


_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "s": " "}


def split_words(value: str) -> list[str]:
    """systemd's extract_first_word(EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE), strict: an escape it
    does not know fails the test instead of guessing."""
    words: list[str] = []
    i = 0
    while True:
        while i < len(value) and value[i] in " \t\n\r":
            i += 1
        if i == len(value):
            return words
        word: list[str] = []
        quote = ""
        while i < len(value):
            char = value[i]
            if char == "\\":
                nxt = value[i + 1]
                if nxt == "x":
                    word.append(chr(int(value[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                assert nxt in _ESCAPES, f"unknown escape \\{nxt} in {value!r}"
                word.append(_ESCAPES[nxt])
                i += 2
                continue
            if quote:
                if char == quote:
                    quote = ""
                else:
                    word.append(char)
            elif char in "\"'":
                quote = char
            elif char in " \t\n\r":
                break
            else:
                word.append(char)
            i += 1
        assert not quote, f"unterminated quote in {value!r}"
        words.append("".join(word))


def unit_specifiers(text: str) -> str:
    """Our units use no specifier but the escaped ``%%``."""
    assert re.search(r"%[^%]", text.replace("%%", "")) is None, text
    return text.replace("%%", "%")


@dataclass
class ParsedUnit:
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str:
        (only,) = self.values(section, key)
        return only

    def argv(self) -> list[str]:
        """ExecStart as the daemon receives it: ``$$`` → ``$`` happens at exec time."""
        words = split_words(unit_specifiers(self.value("Service", "ExecStart")))
        return [word.replace("$$", "$") for word in words]

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for line in self.values("Service", "Environment"):
            for assignment in split_words(unit_specifiers(line)):
                name, _, value = assignment.partition("=")
                env[name] = value
        return env


def parse(text: str) -> ParsedUnit:
    return ParsedUnit(parse_unit(text))


# --- the real tools -------------------------------------------------------------------------


Verify = Callable[[Path], None]


@pytest.fixture
def verify(tmp_path: Path) -> Verify:
    """``verify(path)`` runs ``systemd-analyze verify --user`` and fails on any stderr output."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_PAGER": "", "LC_ALL": "C"}

    analyze = required("systemd-analyze", "systemd")

    def run(path: Path) -> None:
        done = subprocess.run(
            [analyze, "verify", "--user", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and not done.stderr, (
            f"systemd-analyze verify failed (exit {done.returncode}) on {path}:\n"
            f"{done.stderr}\n--- unit ---\n{path.read_text()}"
        )

    return run


def verify_errors(tmp_path: Path, unit_path: Path) -> str:
    runtime = Path(tempfile.mkdtemp(dir=tmp_path))
    runtime.chmod(0o700)
    done = subprocess.run(
        [required("systemd-analyze", "systemd"), "verify", "--user", str(unit_path)],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime), "LC_ALL": "C"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stderr


def _systemd_binary() -> str | None:
    for candidate in (shutil.which("systemd"), "/lib/systemd/systemd", "/usr/lib/systemd/systemd"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class SystemdDump:
    """systemd's own reading of a unit: ``systemd --test --user`` loads it from a private unit
    path and dumps the parsed settings, without starting anything. Test mode refuses to run as
    root, so as root it runs as ``nobody`` through setpriv."""

    def __init__(self, binary: str, prefix: list[str], uid: int | None) -> None:
        self.binary = binary
        self.prefix = prefix
        self.uid = uid

    def load(self, unit_text: str) -> tuple[list[str], dict[str, str]]:
        root = Path(tempfile.mkdtemp(prefix="locus-unit-"))
        try:
            root.chmod(0o755)
            units = root / "units"
            units.mkdir(mode=0o755)
            runtime = root / "runtime"
            runtime.mkdir(mode=0o700)
            if self.uid is not None:
                os.chown(runtime, self.uid, -1)
            unit = units / "locusd.service"
            unit.write_text(unit_text, encoding="utf-8")
            unit.chmod(0o644)
            env = {
                "PATH": os.environ.get("PATH", os.defpath),
                "HOME": str(root),
                "XDG_RUNTIME_DIR": str(runtime),
                "SYSTEMD_UNIT_PATH": f"{units}:",
                "LC_ALL": "C.UTF-8",
            }
            done = subprocess.run(
                [
                    *self.prefix,
                    self.binary,
                    "--test",
                    "--user",
                    "--unit=locusd.service",
                    "--log-target=console",
                    "--log-level=warning",
                ],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)
        out = done.stdout.decode("utf-8")
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode == 0, f"systemd --test failed:\n{err}"
        assert "locusd.service" not in err, f"systemd complained about the unit:\n{err}"
        return _dump_argv(out), _dump_environment(out)


def _unit_block(dump: str) -> list[str]:
    lines = dump.split("\n")
    start = lines.index("\t-> Unit locusd.service:")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("\t-> Unit ")), len(lines)
    )
    return lines[start + 1 : end]


def _dump_environment(dump: str) -> dict[str, str]:
    """``Environment: NAME=value`` lines; a value's newline continues at column 0."""
    env: dict[str, str] = {}
    current = ""
    for line in _unit_block(dump):
        if line.startswith("\t\tEnvironment: "):
            current = line.removeprefix("\t\tEnvironment: ")
            name, _, value = current.partition("=")
            env[name] = value
        elif current and not line.startswith("\t"):
            env[name] += "\n" + line
        else:
            current = ""
    return env


_DUMP_ESCAPES = {"\\": "\\", '"': '"', "$": "$", "`": "`", "n": "\n", "t": "\t"}


def _dump_argv(dump: str) -> list[str]:
    """``Command Line:`` is shell-quoted (systemd's quote_command_line): a word is bare, or in
    double quotes with ``\\`` escapes; ``$$`` is still there (replaced at exec time)."""
    (line,) = [ln for ln in _unit_block(dump) if ln.startswith("\t\t\tCommand Line: ")]
    text = line.removeprefix("\t\t\tCommand Line: ")
    words: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == '"':
            word: list[str] = []
            i += 1
            while text[i] != '"':
                if text[i] == "\\":
                    assert text[i + 1] in _DUMP_ESCAPES, f"escape \\{text[i + 1]} in {text!r}"
                    word.append(_DUMP_ESCAPES[text[i + 1]])
                    i += 2
                else:
                    word.append(text[i])
                    i += 1
            words.append("".join(word))
            i += 1
        else:
            end = text.find(" ", i)
            end = len(text) if end == -1 else end
            words.append(text[i:end])
            i = end
        assert i == len(text) or text[i] == " ", text
        i += 1
    return [word.replace("$$", "$") for word in words]


@pytest.fixture(scope="module")
def systemd_dump() -> SystemdDump:
    if not LINUX:
        pytest.skip("systemd is Linux-only")
    binary = _systemd_binary()
    if binary is None:
        missing("systemd", "systemd")
    if os.geteuid() != 0:
        return SystemdDump(binary, [], None)
    # systemd --test refuses root: setpriv drops to nobody.
    setpriv = required("setpriv", "util-linux")
    nobody = 65534
    return SystemdDump(
        binary, [setpriv, f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups"], nobody
    )


# --- the systemd unit ---------------------------------------------------------------------------


def test_unit_settings() -> None:
    unit = parse(systemd_unit(EXEC, environment={"PATH": "/usr/bin:/bin"}))
    assert unit.value("Unit", "Description")
    assert unit.value("Service", "Type") == "simple"
    assert unit.argv() == EXEC
    assert unit.value("Service", "Restart") == "on-failure"
    assert int(unit.value("Service", "RestartSec")) > 0
    assert unit.value("Service", "KillMode") == "mixed"
    assert unit.value("Service", "TimeoutStopSec") == str(STOP_TIMEOUT_SEC)
    assert unit.value("Install", "WantedBy") == "default.target"
    # Log lines reach the journal as they are written, not in 8 KiB chunks.
    assert unit.environment() == {"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"}
    assert not unit.values("Service", "EnvironmentFile")


def test_the_caller_can_override_the_base_environment() -> None:
    unit = parse(systemd_unit(EXEC, environment={"PYTHONUNBUFFERED": "0"}))
    assert unit.environment() == {"PYTHONUNBUFFERED": "0"}


@needs_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, verify: Verify) -> None:
    path = tmp_path / "locusd.service"
    path.write_text(
        systemd_unit(
            EXEC,
            environment={"PATH": os.environ.get("PATH", os.defpath)},
            environment_file=tmp_path / "locusd.env",
        )
    )
    verify(path)


@needs_analyze
def test_the_verify_harness_catches_a_broken_unit(tmp_path: Path) -> None:
    """A check that cannot fail proves nothing: the same harness rejects an unquoted path with a
    space, and an executable that does not exist."""
    spaced = tmp_path / "dir with spaces"
    spaced.mkdir()
    (spaced / "python").symlink_to(PYTHON)
    good = systemd_unit([str(spaced / "python"), "-m", "locusd", "serve"])
    bad = tmp_path / "bad" / "locusd.service"
    bad.parent.mkdir()
    bad.write_text(good.replace(f'"{spaced / "python"}"', str(spaced / "python")))
    assert "is not executable" in verify_errors(tmp_path, bad)
    bad.write_text(systemd_unit([str(tmp_path / "missing"), "serve"]))
    assert "is not executable" in verify_errors(tmp_path, bad)


NASTY_ENV = {
    "LOCUS_NOTE": "a \"double\" and 'single' quoted value with  two spaces ",
    "BACKSLASHES": "C:\\dir\\ and \\n not a newline \\",
    "LITERALS": "$HOME ${HOME} %h %% ; \\; # not a comment",
    "MULTILINE": "line one\nline\ttwo",
    "UNICODE": "Ünïcødé \u2014 ✓",
    "EMPTY": "",
}


def _executable(tmp_path: Path, dirname: str) -> Path:
    """A real executable (a symlink to this Python) in a directory named ``dirname``."""
    directory = tmp_path / dirname
    directory.mkdir()
    link = directory / "python 3"
    link.symlink_to(PYTHON)
    return link


#: A path systemd accepts as an executable, once quoted and escaped.
SPACED = "Ada Lovelace 100% ; # = ✓ {x}"
#: A path systemd refuses as an executable (quotes, backslash) or cannot carry ($).
UNSAFE = 'O\'Brien "dir" back\\slash $HOME'


@needs_analyze
def test_spaces_and_quotes_survive(tmp_path: Path, verify: Verify) -> None:
    exe = _executable(tmp_path, SPACED)
    argv = [str(exe), "-m", "locusd", "serve", "", "a b", ";", "$HOME", "100%", "x\ny", "'\"\\"]
    text = systemd_unit(argv, environment=NASTY_ENV, environment_file=exe.parent / "locus.env")
    unit_dir = tmp_path / "unit dir with spaces"
    unit_dir.mkdir()
    path = unit_dir / "locusd.service"
    path.write_text(text, encoding="utf-8")
    # verify resolves the executable from the unquoted ExecStart: it only passes if the path
    # with its spaces, "%" and ";" came back intact.
    verify(path)
    unit = parse(text)
    assert unit.argv() == argv
    assert unit.environment() == {"PYTHONUNBUFFERED": "1", **NASTY_ENV}
    assert unit.value("Service", "EnvironmentFile") == "-" + str(exe.parent / "locus.env").replace(
        "%", "%%"
    )


@needs_analyze
def test_an_executable_systemd_refuses_runs_through_env(tmp_path: Path, verify: Verify) -> None:
    exe = _executable(tmp_path, UNSAFE)
    argv = [str(exe), "-m", "locusd", "serve"]
    text = systemd_unit(argv)
    path = tmp_path / "locusd.service"
    path.write_text(text, encoding="utf-8")
    verify(path)
    got = parse(text).argv()
    assert got == [ENV_EXECUTABLE, *argv]
    # And env really runs it: the path arrived intact.
    done = subprocess.run([*got[:2], "-c", "pass"], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    with pytest.raises(ValueError, match="="):
        systemd_unit([str(tmp_path / "a'b=c" / "python")])


def test_systemd_reads_back_the_same_argv_and_environment(
    tmp_path: Path, systemd_dump: SystemdDump
) -> None:
    argv = ["-m", "locusd", "serve", "", "a b", ";", "$HOME", "100%", "x\ny", "t\tz", "'\"\\"]
    spaced = str(_executable(tmp_path, SPACED))
    got_argv, got_env = systemd_dump.load(systemd_unit([spaced, *argv], environment=NASTY_ENV))
    assert got_argv == [spaced, *argv]
    assert got_env == {"PYTHONUNBUFFERED": "1", **NASTY_ENV}
    unsafe = str(_executable(tmp_path, UNSAFE))
    got_argv, _ = systemd_dump.load(systemd_unit([unsafe, *argv]))
    assert got_argv == [ENV_EXECUTABLE, unsafe, *argv]


# Any text the renderers accept: no surrogates (not UTF-8), no noncharacters and no C0 control
# character but tab and newline (refused, see test_refuses_what_cannot_be_carried); plus a
# sample of what quoting or line splitting could trip on.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FFFF).filter(
        lambda c: not (0xFDD0 <= ord(c) <= 0xFDEF or (ord(c) & 0xFFFE) == 0xFFFE)
    )
    | st.sampled_from("\t\n"),
    max_size=20,
)
_SPECIAL = st.text(st.sampled_from(" \"'\\$%;#{}`!@-+:=\t\nxé\x85\u2028\ufeff\u00a0"), max_size=12)
_WORD = _TEXT | _SPECIAL
_ENV = st.dictionaries(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), _WORD, max_size=4
)


@given(args=st.lists(_WORD, max_size=6), env=_ENV)
@settings(max_examples=300)
def test_python_model_round_trips(args: list[str], env: dict[str, str]) -> None:
    argv = ["/usr/bin/locusd", *args]
    unit = parse(systemd_unit(argv, environment=env))
    assert unit.argv() == argv
    assert unit.environment() == {"PYTHONUNBUFFERED": "1", **env}


@given(args=st.lists(_WORD, max_size=6), env=_ENV)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_systemd_round_trips_arbitrary_text(
    systemd_dump: SystemdDump, args: list[str], env: dict[str, str]
) -> None:
    # A value's newline followed by a tab would look like the next setting in the dump.
    env = {name: value.replace("\n\t", "\n ") for name, value in env.items()}
    argv = [PYTHON, *args]
    got_argv, got_env = systemd_dump.load(systemd_unit(argv, environment=env))
    assert got_argv == argv
    assert got_env == {"PYTHONUNBUFFERED": "1", **env}


@pytest.mark.parametrize(
    ("argv", "env", "match"),
    [
        ([], {}, "empty"),
        (["locusd", "serve"], {}, "absolute"),
        (["-/usr/bin/locusd"], {}, "absolute"),
        (["/usr/bin/locusd", "a\0b"], {}, "NUL"),
        (["/usr/bin/locusd", "a\x1bb"], {}, "control character"),
        (["/usr/bin/locusd", "\udcff"], {}, "UTF-8"),
        (["/usr/bin/locusd", "a\ufffeb"], {}, "noncharacter"),
        (["/usr/bin/locusd"], {"A": "\ufdd0"}, "noncharacter"),
        (["/usr/bin/locusd"], {"1ABC": "x"}, "invalid environment variable name"),
        (["/usr/bin/locusd"], {"A=B": "x"}, "invalid environment variable name"),
        (["/usr/bin/locusd"], {"A": "carriage\rreturn"}, "control character"),
    ],
)
def test_refuses_what_cannot_be_carried(argv: list[str], env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        systemd_unit(argv, environment=env)
    with pytest.raises(ValueError, match=match):
        launchd_plist(argv, log_dir=Path("/tmp/logs"), environment=env)


@pytest.mark.parametrize("description", ["two\nlines", "ends with \\", "nul\0"])
def test_refuses_a_description_that_would_break_the_unit(description: str) -> None:
    with pytest.raises(ValueError, match="description"):
        systemd_unit(EXEC, description=description)


def test_description_specifiers_are_escaped() -> None:
    assert (
        parse(systemd_unit(EXEC, description="100% Locus")).value("Unit", "Description")
        == "100%% Locus"
    )


def test_a_string_is_not_a_command_line() -> None:
    with pytest.raises(TypeError):
        quote_exec_args("/usr/bin/locusd serve")


def test_environment_file_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        systemd_unit(EXEC, environment_file=Path("locusd.env"))


@needs_analyze
def test_installed_unit_verifies(tmp_path: Path, verify: Verify) -> None:
    """The file ``install`` writes, in a home whose path has a space, is valid as written."""
    home = tmp_path / "home with space"
    result = install(
        "systemd", EXEC, home=home, environ={"PATH": "/usr/bin:/bin"}, run_systemctl=False
    )
    verify(result.path)
    unit = parse(result.path.read_text())
    assert unit.argv() == EXEC
    assert unit.value("Service", "EnvironmentFile") == f"-{home}/.config/locus/locusd.env"


# --- the launchd plist ----------------------------------------------------------------------


def _plist(
    args: list[str] = EXEC,
    env: Mapping[str, str] | None = None,
    *,
    label: str = LAUNCHD_LABEL,
    working_directory: Path | None = None,
) -> dict[str, object]:
    data = launchd_plist(
        args,
        log_dir=Path("/Users/ada/Library/Logs/locus"),
        environment=env,
        label=label,
        working_directory=working_directory,
    )
    loaded = plistlib.loads(data)
    assert isinstance(loaded, dict)
    return loaded


def test_plist_keys_launchd_uses() -> None:
    plist = _plist(env={"PATH": "/opt/homebrew/bin:/usr/bin"})
    assert plist["Label"] == LAUNCHD_LABEL
    args = plist["ProgramArguments"]
    assert isinstance(args, list) and all(isinstance(a, str) for a in args)
    assert args == EXEC
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardOutPath"] == "/Users/ada/Library/Logs/locus/locusd.log"
    assert plist["StandardErrorPath"] == plist["StandardOutPath"]
    assert plist["EnvironmentVariables"] == {
        "PYTHONUNBUFFERED": "1",
        "PATH": "/opt/homebrew/bin:/usr/bin",
    }
    assert plist["ProcessType"] == "Background"
    assert plist["ExitTimeOut"] == STOP_TIMEOUT_SEC
    assert "WorkingDirectory" not in plist


def test_plist_label_and_working_directory() -> None:
    plist = _plist(label="dev.locus.test", working_directory=Path("/Users/ada"))
    assert plist["Label"] == "dev.locus.test"
    assert plist["WorkingDirectory"] == "/Users/ada"
    for bad in ("", "a/b", "has space"):
        with pytest.raises(ValueError, match="label"):
            _plist(label=bad)
    with pytest.raises(ValueError, match="absolute"):
        launchd_plist(EXEC, log_dir=Path("logs"))
    with pytest.raises(ValueError, match="absolute"):
        _plist(working_directory=Path("ada"))


@given(args=st.lists(_WORD, max_size=6), env=_ENV)
@settings(max_examples=200)
def test_plist_round_trips(args: list[str], env: dict[str, str]) -> None:
    argv = ["/Users/Ada Lovelace/.venv/bin/python", *args]
    plist = _plist(argv, env)
    assert plist["ProgramArguments"] == argv
    assert plist["EnvironmentVariables"] == {"PYTHONUNBUFFERED": "1", **env}


def test_plist_passes_plutil_lint(tmp_path: Path) -> None:
    plutil = shutil.which("plutil")
    if plutil is None:
        pytest.skip("plutil is only on macOS")
    path = tmp_path / f"{LAUNCHD_LABEL}.plist"
    path.write_bytes(launchd_plist(EXEC, log_dir=tmp_path, environment=NASTY_ENV))
    done = subprocess.run([plutil, "-lint", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
