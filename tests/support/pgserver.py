"""A throwaway, real PostgreSQL server for tests and benchmarks.

Tests must exercise the real database (no mocks, no docker), so this module runs
``initdb`` + ``pg_ctl`` from the locally installed PostgreSQL binaries into a
private directory, tuned for speed over durability.

When the current process is root, the server binaries (which refuse to run as
root) are executed as the ``postgres`` system user via ``subprocess``'s
``user=``/``group=`` arguments. If that user cannot traverse into ``base_dir``
(pytest's ``tmp_path`` lives under a mode-0700 root-owned directory), the data
and socket directories are placed in a private scratch directory under ``/tmp``
that is removed again by :meth:`PostgresServer.stop`; the server log always stays
in ``base_dir``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self
from urllib.parse import quote

__all__ = ["PostgresServer", "find_pg_bindir"]

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres", "psql")
_BINDIR_ENV = "LOCUS_PG_BINDIR"
_SERVER_USER = "postgres"  # both the OS user (when root) and the database superuser
_HOST = "127.0.0.1"
_START_TIMEOUT_S = 60
_PORT_ATTEMPTS = 5  # retries only when the chosen port was taken in the meantime
_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")
_MAX_IDENTIFIER_LEN = 63  # NAMEDATALEN - 1; longer names would be silently truncated
# sun_path is 108 bytes on Linux; the socket file is ".s.PGSQL.<port>" (+ ".lock").
_MAX_SOCKET_DIR_LEN = 107 - len("/.s.PGSQL.65535.lock")
_LOG_TAIL_LINES = 40

_SETTINGS: dict[str, str] = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
}


def _has_binaries(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort /usr/lib/postgresql/<version>/bin numerically (so 15 beats 9.6)."""
    parts = path.parent.name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def find_pg_bindir() -> Path | None:
    """Locate a directory holding initdb, pg_ctl, postgres and psql.

    Order: ``$LOCUS_PG_BINDIR`` (authoritative when set: None if it lacks the binaries,
    so a misconfiguration is not silently papered over), ``pg_config --bindir``,
    the highest ``/usr/lib/postgresql/*/bin`` (Debian does not put initdb on PATH),
    then the directory of ``initdb`` on PATH.
    """
    env = os.environ.get(_BINDIR_ENV)
    if env:
        path = Path(env)
        return path if _has_binaries(path) else None

    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            proc = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            proc = None
        if proc is not None and proc.returncode == 0 and proc.stdout.strip():
            path = Path(proc.stdout.strip())
            if _has_binaries(path):
                return path

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for path in candidates:
        if _has_binaries(path):
            return path

    initdb = shutil.which("initdb")
    if initdb is not None:
        for path in (Path(initdb).parent, Path(initdb).resolve().parent):
            if _has_binaries(path):
                return path
    return None


def _validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or len(name) > _MAX_IDENTIFIER_LEN:
        raise ValueError(
            f"invalid database name {name!r}: must match [a-z_][a-z0-9_]* "
            f"and be at most {_MAX_IDENTIFIER_LEN} characters"
        )
    return name


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _conf_quote(value: str) -> str:
    """Quote a postgresql.conf string value (backslash escapes are honoured there)."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"newline in configuration value {value!r}")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """Drop PG* variables (PGDATA, PGPORT, PGHOST, ...) that would redirect our tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"  # stable, English messages for the log / error matching
    return env


class PostgresServer:
    """One PostgreSQL cluster under ``base_dir``, started and stopped explicitly.

    Use as a context manager or call :meth:`start`/:meth:`stop`; an ``atexit``
    hook stops the server anyway so an aborted test run leaves no postmaster behind.
    """

    def __init__(self, base_dir: Path, **settings: str) -> None:
        """``settings`` override the speed-first defaults, e.g. ``synchronous_commit="on"``
        for a test that crashes the server and needs every acknowledged commit to survive."""
        self._settings = {**_SETTINGS, **settings}
        self._base_dir = Path(base_dir).absolute()
        self._data_dir = self._base_dir / "data"
        self._socket_dir = self._base_dir / "sock"
        self._log_path = self._base_dir / "postgres.log"
        self._bindir: Path | None = None
        self._scratch: Path | None = None
        self._port: int | None = None
        self._running = False
        self._owner_pid = os.getpid()
        self._as_root = os.geteuid() == 0

    # -- public API -------------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port on 127.0.0.1; only meaningful while the server runs."""
        if self._port is None or not self._running:
            raise RuntimeError("PostgresServer is not running")
        return self._port

    @property
    def data_dir(self) -> Path:
        """Where the cluster actually lives (may be a /tmp scratch dir, see module doc)."""
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """Server log (always inside base_dir), handy when a test fails."""
        return self._log_path

    def url(self, dbname: str = "postgres") -> str:
        """libpq/asyncpg URL for ``dbname`` as the trusted superuser ``postgres``."""
        return f"postgresql://{_SERVER_USER}@{_HOST}:{self.port}/{quote(dbname, safe='')}"

    def start(self) -> None:
        """initdb (if needed) and start the server; raises RuntimeError with the log tail."""
        if self._running:
            raise RuntimeError("PostgresServer is already running")
        bindir = find_pg_bindir()
        if bindir is None:
            hint = ""
            if os.environ.get(_BINDIR_ENV):
                hint = f" ({_BINDIR_ENV}={os.environ[_BINDIR_ENV]!r} lacks them)"
            raise RuntimeError(
                f"PostgreSQL server binaries ({', '.join(_REQUIRED_BINARIES)}) not found{hint}; "
                f"install Debian package `postgresql` (apt-get install postgresql) "
                f"or point {_BINDIR_ENV} at its bin directory"
            )
        self._bindir = bindir
        if self._as_root:
            try:
                pwd.getpwnam(_SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root but there is no {_SERVER_USER!r} system user to run "
                    "PostgreSQL as; install Debian package `postgresql`, which creates it"
                ) from None

        self._base_dir.mkdir(parents=True, exist_ok=True)
        self._choose_locations()
        # Registered before anything can start a postmaster, so even a start that is
        # interrupted half-way gets cleaned up at interpreter exit.
        atexit.register(self.stop)
        self._running = True
        try:
            if not (self._data_dir / "PG_VERSION").exists():
                self._initdb()
            self._make_server_dir(self._socket_dir, mode=0o755)
            self._start_postmaster()
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown (disconnects clients); safe to call repeatedly."""
        if not self._running or os.getpid() != self._owner_pid:
            return  # not started, already stopped, or a forked child inheriting atexit
        try:
            if (self._data_dir / "postmaster.pid").exists():
                proc = self._pg_ctl("stop", "-m", "fast")
                if proc.returncode != 0 and (self._data_dir / "postmaster.pid").exists():
                    proc = self._pg_ctl("stop", "-m", "immediate")
                    if proc.returncode != 0 and (self._data_dir / "postmaster.pid").exists():
                        raise RuntimeError(
                            f"could not stop PostgreSQL in {self._data_dir}:\n"
                            f"{proc.stdout}{self._log_tail()}"
                        )
        finally:
            self._running = False
            atexit.unregister(self.stop)
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def restart(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Restart on the same port and data: every client connection drops, as in a real
        database restart (for tests of reconnection); ``immediate`` is a crash, with recovery
        from the WAL on start."""
        if not self._running:
            raise RuntimeError("PostgresServer is not running")
        with self._log_path.open("a", encoding="utf-8") as log:
            proc = self._run_server_tool(
                [self._bin("pg_ctl"), "restart", "-m", mode, "-D", str(self._data_dir), "-w",
                 "-t", str(_START_TIMEOUT_S)],
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=_START_TIMEOUT_S + 30,
            )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"PostgreSQL failed to restart:\n{self._log_tail()}")

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (optionally from a template) and return its URL.

        Note PostgreSQL refuses to copy a template that has open connections.
        """
        sql = f"CREATE DATABASE {_quote_ident(_validate_name(name))}"
        if template is not None:
            sql += f" TEMPLATE {_quote_ident(_validate_name(template))}"
        self._psql(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ... WITH (FORCE): terminates lingering connections."""
        self._psql(f"DROP DATABASE IF EXISTS {_quote_ident(_validate_name(name))} WITH (FORCE)")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------

    def _choose_locations(self) -> None:
        """Keep data/socket in base_dir unless the server user can't reach it or the
        socket path would exceed the unix-socket length limit."""
        self._data_dir = self._base_dir / "data"
        self._socket_dir = self._base_dir / "sock"
        if not self._server_can_reach(self._base_dir):
            self._data_dir = self._get_scratch() / "data"
            self._socket_dir = self._get_scratch() / "sock"
        elif len(os.fsencode(self._socket_dir)) > _MAX_SOCKET_DIR_LEN:
            self._socket_dir = self._get_scratch() / "sock"

    def _server_can_reach(self, path: Path) -> bool:
        """Whether the (possibly dropped-privilege) server user can traverse to path."""
        if not self._as_root:
            return True
        return self._run_server_tool(["test", "-x", str(path)]).returncode == 0

    def _get_scratch(self) -> Path:
        if self._scratch is None:
            scratch = Path(tempfile.mkdtemp(prefix="locus-pg-", dir="/tmp"))
            self._scratch = scratch
            self._chown(scratch)
            if not self._server_can_reach(scratch):
                raise RuntimeError(f"{_SERVER_USER!r} cannot access scratch dir {scratch}")
        return self._scratch

    def _chown(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, user=_SERVER_USER, group=_SERVER_USER)

    def _make_server_dir(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._chown(path)
        path.chmod(mode)

    def _bin(self, name: str) -> str:
        assert self._bindir is not None
        return str(self._bindir / name)

    def _run_server_tool(
        self,
        args: list[str],
        *,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | IO[str] | None = subprocess.PIPE,
        stderr: int | None = subprocess.PIPE,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        """Run initdb/pg_ctl/test, as the postgres user when we are root (they refuse root).

        Uses subprocess's own setgid/setgroups/setuid (no runuser/su/PAM needed).
        """
        as_root = self._as_root
        return subprocess.run(
            args,
            cwd="/",  # the caller's cwd may be unreadable for the postgres user
            env=_clean_env(),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            text=True,
            timeout=timeout,
            check=False,
            user=_SERVER_USER if as_root else None,
            group=_SERVER_USER if as_root else None,
            extra_groups=[] if as_root else None,  # drop root's supplementary groups
        )

    def _initdb(self) -> None:
        self._make_server_dir(self._data_dir, mode=0o700)
        proc = self._run_server_tool(
            [
                self._bin("initdb"),
                "-D", str(self._data_dir),
                "-U", _SERVER_USER,
                "-A", "trust",
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(
                f"initdb failed (exit {proc.returncode}) for {self._data_dir}:\n"
                f"{proc.stdout}{proc.stderr}"
            )
        with (self._data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# Locus test settings (rewritten on every start)\ninclude 'locus.conf'\n")

    def _write_runtime_conf(self, port: int) -> None:
        lines = [f"{key} = {_conf_quote(value)}" for key, value in self._settings.items()]
        lines.append(f"port = {port}")
        lines.append(f"unix_socket_directories = {_conf_quote(str(self._socket_dir))}")
        path = self._data_dir / "locus.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self._chown(path)

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run_server_tool(
            [self._bin("pg_ctl"), *args, "-D", str(self._data_dir), "-w",
             "-t", str(_START_TIMEOUT_S)],
            stderr=subprocess.STDOUT,
            timeout=_START_TIMEOUT_S + 30,
        )  # fmt: skip

    def _start_postmaster(self) -> None:
        proc: subprocess.CompletedProcess[str] | None = None
        port = 0
        for _attempt in range(_PORT_ATTEMPTS):
            port = _free_port()
            self._write_runtime_conf(port)
            self._port = port
            with self._log_path.open("a", encoding="utf-8") as log:
                log_offset = log.tell()
                # Root opens the log and the postmaster inherits the fd, so the log
                # can live in base_dir even when the postgres user can't reach it.
                # A regular file (not a pipe) so pg_ctl returning isn't blocked by
                # the postmaster keeping the descriptor open.
                proc = self._run_server_tool(
                    [self._bin("pg_ctl"), "start", "-D", str(self._data_dir), "-w",
                     "-t", str(_START_TIMEOUT_S)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=_START_TIMEOUT_S + 30,
                )  # fmt: skip
            if proc.returncode == 0:
                return
            new_log = self._read_log(log_offset)
            port_taken = "could not bind" in new_log or "Address already in use" in new_log
            if not port_taken or (self._data_dir / "postmaster.pid").exists():
                break
        raise RuntimeError(
            f"PostgreSQL failed to start (pg_ctl exit {proc and proc.returncode}, port {port}, "
            f"data {self._data_dir}); tail of {self._log_path}:\n{self._log_tail()}"
        )

    def _read_log(self, offset: int = 0) -> str:
        try:
            with self._log_path.open("r", encoding="utf-8", errors="replace") as log:
                log.seek(offset)
                return log.read()
        except OSError:
            return ""

    def _log_tail(self) -> str:
        return "\n".join(self._read_log().splitlines()[-_LOG_TAIL_LINES:])

    def _psql(self, sql: str) -> None:
        """Run one statement via psql over TCP (psql itself is fine as root)."""
        port = self.port  # raises if not running
        proc = subprocess.run(
            [
                self._bin("psql"),
                "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", _HOST, "-p", str(port), "-U", _SERVER_USER, "-d", "postgres",
                "-c", sql,
            ],
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed (exit {proc.returncode}) for {sql!r}:\n{proc.stderr}")
