"""Containment for the agent's commands with bubblewrap (``bwrap``), when it works here.

A process group is not enough: a grandchild that calls ``setsid`` leaves the group, survives
``killpg`` and keeps running after a timeout or a cancel. In a new PID namespace it cannot: when
the namespace's first process dies, the kernel kills everything in it. A new network namespace
(only a loopback of its own) also keeps a command from sending code anywhere, which is what
"source never leaves the machine" needs from an unattended agent; ``allow_network`` turns that
off for projects whose tests need it.

What a command sees, in the order the mounts are laid (a later one wins):

1. The user's file system, read-only (``--ro-bind / /``): the system's tools, and nothing a
   command writes outside its worktree lands anywhere a later, unsandboxed program would run or
   trust it (a shell's startup file, another checkout's hooks, another run's worktree). The
   shared scratch places (``/tmp``, ``/var/tmp``, ``/dev/shm``) are empty tmpfs of the
   command's own: writable, gone with it, and without the sockets other programs keep there
   (ssh and X11 agents, other daemons).
2. ``$HOME`` as an empty tmpfs (:meth:`Sandbox.with_home`), with only the allow-listed tool
   directories (``~/.cargo``, ``~/.pyenv``, … — the user's own config chooses) bound back
   read-only: a credential store nobody thought to name stays out of sight, and nothing a
   command writes there (``~/.bashrc``, ``~/.gitconfig``) outlives it.
3. Hidden (:func:`secret_places`): the runtime directory (the daemon's socket, ssh and gpg
   agents), Locus's own config and state (the cloud token, other runs' transcripts), and the
   usual credential stores in ``$HOME`` — a second layer, for when ``$HOME`` is not replaced.
   The container engines' sockets (:func:`container_sockets`) are hidden too — a Unix socket on
   a read-only mount can still be connected to, and Docker's is root on the host — or, when the
   user's config allows containers, bound in (over the hidden runtime dir too).
4. The run's git repository (:class:`GitLayout`): the common git dir (config, hooks, refs,
   objects), the user's checkout and other worktrees read-only — laid before step 3, so that a
   checkout holding a hidden place does not bring it back; writable only the worktree's own
   admin dir (its index), in which the files that say where the repository is, which branch
   is checked out, and Locus's run metadata stay read-only. So the user's repository cannot
   be changed from inside.
5. The repository's package caches (:mod:`locusd.agent.caches`), writable, although Locus's
   cache dir around them is hidden (step 3): no command sees another repository's caches.
   The worktree, writable — even where it lies inside a hidden place (the state dir) — with its
   ``.git`` file read-only (pointed elsewhere, it would make Locus's own git calls read a git
   dir of the agent's).
6. The network (:class:`Egress`): none but a loopback of the command's own, and — when the run
   has an egress proxy — the proxy's socket and the relay (:mod:`locusd.agent.egress.bridge`)
   bound in at fixed paths under the command's ``/tmp``; the relay starts first and the command
   reaches allowed hosts through it.

Where bwrap is missing or user namespaces are restricted, :func:`probe` says so and commands run
with process-group containment only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from locusd.config import AgentConfig

#: World-writable scratch places each command gets an empty one of (step 1 above).
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108 - mount points, inside only
#: Credential stores under ``$HOME`` that no command of the agent's needs.
HOME_SECRETS = (
    *(".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials"),
    *(".pypirc", ".npmrc", ".config/gcloud", ".config/gh", ".config/hub", ".password-store"),
    # The registry token for ``cargo publish``, in a directory bound back (``~/.cargo``).
    *(".cargo/credentials", ".cargo/credentials.toml"),
)
#: Directories under ``$HOME`` that toolchains install into, seen read-only by commands
#: (``agent.home_allow`` in the user's config replaces the list). The user's caches are left
#: out: package managers use Locus's per-repository ones (:mod:`locusd.agent.caches`).
HOME_ALLOW = (
    *(".cargo", ".rustup", ".pyenv", ".nvm", ".volta", ".bun", ".deno", ".sdkman", "go"),
    *(".local/bin", ".local/lib", ".local/share/pnpm", ".local/share/uv", ".juliaup"),
)
#: Files of a worktree's admin dir that stay read-only inside: where the repository is
#: (``commondir``, ``gitdir``), the checked-out branch (``HEAD``: a worktree switched to the
#: user's branch would get the accepted commit there), per-worktree config, Locus's metadata.
ADMIN_READ_ONLY = ("commondir", "gitdir", "HEAD", "config.worktree", "locus.json")
#: Where the egress proxy's socket and the relay appear inside (in the command's own /tmp).
EGRESS_SOCKET = "/tmp/.locus-egress.sock"  # noqa: S108 - inside the sandbox's private /tmp
EGRESS_BRIDGE = "/tmp/.locus-egress-bridge.py"  # noqa: S108 - inside the sandbox's private /tmp
#: The relay's proxy port on the command's loopback (the namespace's own: nothing else there).
PROXY_PORT = 3128


@dataclass(frozen=True)
class Egress:
    """A run's way out: its egress proxy's socket (outside), and the host loopback ports the
    rules allow, which the relay listens on inside."""

    socket: Path
    loopback_ports: tuple[int, ...] = ()

    def relayed(self, argv: list[str]) -> list[str]:
        """``argv`` started by the relay, with the interpreter running Locus (by its real path:
        a virtual environment's ``bin`` may lie in a hidden place)."""
        port = next(p for p in range(PROXY_PORT, PROXY_PORT + 100) if p not in self.loopback_ports)
        ports = [str(p) for p in self.loopback_ports]
        python = str(Path(sys.executable).resolve())
        return [python, "-I", "-S", EGRESS_BRIDGE, EGRESS_SOCKET, str(port), *ports, "--", *argv]

    def mounts(self) -> list[str]:
        from locusd.agent.egress import bridge

        return [
            *("--ro-bind", str(self.socket), EGRESS_SOCKET),
            *("--ro-bind", str(Path(bridge.__file__).resolve()), EGRESS_BRIDGE),
        ]


def secret_places(env: Mapping[str, str], *, locus_dirs: Iterable[Path] = ()) -> tuple[Path, ...]:
    """What the sandbox hides: the runtime dir (and the daemon's socket dir wherever it is),
    Locus's own directories, and the credential stores in ``$HOME``."""
    from locusd.server.paths import socket_path

    places = [*locus_dirs, socket_path(env).parent]
    if env.get("XDG_RUNTIME_DIR"):
        places.append(Path(env["XDG_RUNTIME_DIR"]))
    home = env.get("HOME")
    if home:
        places += [Path(home) / name for name in HOME_SECRETS]
    return tuple(dict.fromkeys(places))


def container_sockets(env: Mapping[str, str]) -> tuple[Path, ...]:
    """Where container engines listen, symlinks resolved (``/var/run`` is ``/run``): whoever
    connects runs containers as the engine's user — root, for Docker's and rootful podman's.
    ``$DOCKER_HOST`` and ``$CONTAINER_HOST`` (``unix://…``) name one more each."""
    runtime = Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    places = [
        *(Path("/var/run/docker.sock"), Path("/run/docker.sock"), runtime / "docker.sock"),
        *(runtime / "podman" / "podman.sock", Path("/run/podman/podman.sock")),
        *(Path("/run/containerd/containerd.sock"), Path("/run/buildkit/buildkitd.sock")),
    ]
    for name in ("DOCKER_HOST", "CONTAINER_HOST"):
        if env.get(name, "").startswith("unix://"):
            places.append(Path(env[name].removeprefix("unix://")))
    return tuple(dict.fromkeys(place.resolve() for place in places if place.is_absolute()))


class GitLayoutError(Exception):
    """The worktree's git files are not where a linked worktree has them; says why."""


@dataclass(frozen=True)
class GitLayout:
    """Where a linked worktree's repository lives, read by the daemon before the agent runs
    (afterwards the agent could have rewritten the ``.git`` file)."""

    worktree: Path
    common_dir: Path
    admin_dir: Path
    #: The repository's other working trees (the user's checkout, other runs): read-only.
    others: tuple[Path, ...] = ()

    @classmethod
    def of(cls, worktree: Path, common_dir: Path) -> GitLayout:
        """The layout of ``worktree``, a linked worktree of the repository whose common git
        dir is ``common_dir`` (which the caller knows from the user's checkout, not from the
        worktree): its ``.git`` file must name an admin dir there that names it back."""
        dot_git = worktree / ".git"
        common = common_dir.resolve()
        try:
            text = dot_git.read_text(encoding="utf-8").strip()
            admin = (worktree / text.removeprefix("gitdir:").strip()).resolve()
            back = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise GitLayoutError(f"{dot_git} is not a linked worktree's .git file: {exc}") from None
        if (
            not text.startswith("gitdir:")
            or admin.parent != common / "worktrees"
            or (admin / back).resolve() != dot_git.resolve()
        ):
            raise GitLayoutError(
                f"{dot_git} does not name this worktree's admin dir under {common / 'worktrees'}"
                " (it was changed): remove the worktree and start the run anew"
            )
        return cls(worktree.resolve(), common, admin, _other_worktrees(common, admin))

    def read_only(self) -> list[str]:
        """bwrap arguments: the repository's other working trees and the common dir,
        read-only (laid before the hidden places, so a checkout that contains one — a
        dotfiles repository in ``$HOME`` — does not bring it back)."""
        args = []
        for other in self.others:
            args += ["--ro-bind", str(other), str(other)]
        return [*args, "--ro-bind", str(self.common_dir), str(self.common_dir)]

    def writable(self) -> list[str]:
        """bwrap arguments: the admin dir writable but for :data:`ADMIN_READ_ONLY`, the
        worktree writable but for its ``.git`` file."""
        args = ["--bind", str(self.admin_dir), str(self.admin_dir)]
        for name in ADMIN_READ_ONLY:
            if (self.admin_dir / name).exists():
                args += ["--ro-bind", str(self.admin_dir / name), str(self.admin_dir / name)]
        args += ["--bind", str(self.worktree), str(self.worktree)]
        return [*args, "--ro-bind", str(self.worktree / ".git"), str(self.worktree / ".git")]


@dataclass(frozen=True)
class Sandbox:
    bwrap: str
    network: bool
    hidden: tuple[Path, ...] = ()
    scratch: Path | None = None  # the run's $TMPDIR: writable even under a hidden place
    #: ``$HOME`` replaced by an empty tmpfs with these entries (relative to it) bound back
    #: read-only; None: ``$HOME`` as it is (the deny-list alone).
    home: Path | None = None
    home_allow: tuple[str, ...] = ()
    git: GitLayout | None = None
    #: Container engines' sockets (:func:`container_sockets`): hidden, or bound in with
    #: ``containers`` (the user's consent: ``[agent] containers``, or an approved command).
    engine_sockets: tuple[Path, ...] = ()
    containers: bool = False
    #: With the network cut: the run's egress proxy, which commands reach through the relay.
    egress: Egress | None = None
    #: The repository's package caches (:mod:`locusd.agent.caches`), (source, where inside):
    #: writable, even under a hidden place (Locus's cache dir, which hides every other
    #: repository's) or the read-only ``~/.cargo``.
    caches: tuple[tuple[Path, Path], ...] = ()
    #: Places in a scratch place (``/tmp``…) bound back read-only over its empty tmpfs: an
    #: external agent's own program when the user keeps it there.
    shown: tuple[Path, ...] = ()

    def wrap(self, argv: list[str], cwd: Path) -> list[str]:
        prefix = [
            *(self.bwrap, "--die-with-parent", "--unshare-pid", "--ro-bind", "/", "/"),
            *("--dev", "/dev", "--proc", "/proc"),
        ]
        for scratch in SHARED_SCRATCH:
            prefix += ["--tmpfs", scratch]
        for place in self.shown:
            prefix += ["--ro-bind", str(place), str(place)]
        shown: list[Path] = []
        if self.home is not None:
            prefix += ["--tmpfs", str(self.home)]
            for name in self.home_allow:
                allowed = self.home / name
                if allowed.exists():
                    prefix += ["--ro-bind", str(allowed), str(allowed)]
                    shown.append(allowed)
        if self.git is not None:
            prefix += self.git.read_only()
            shown += [*self.git.others, self.git.common_dir]
        for place in self.hidden:
            if self._out_of_sight(place, shown):
                continue
            if place.is_dir():
                prefix += ["--tmpfs", str(place)]
            elif place.exists():
                prefix += ["--ro-bind", "/dev/null", str(place)]
        for socket in self.engine_sockets:  # after the hiding: one may be in the runtime dir
            if self.containers and socket.exists():
                prefix += ["--ro-bind", str(socket), str(socket)]
            elif socket.exists() and not self._out_of_sight(socket, shown):
                cover = ["--tmpfs"] if socket.is_dir() else ["--ro-bind", "/dev/null"]
                prefix += [*cover, str(socket)]
        if self.scratch is not None:  # after the hiding: it lives under Locus's state
            prefix += ["--bind", str(self.scratch), str(self.scratch)]
        for source, inside in self.caches:  # likewise: under Locus's hidden cache dir
            prefix += ["--bind", str(source), str(inside)]
        relayed = self.egress is not None and not self.network
        if relayed:
            assert self.egress is not None
            prefix += self.egress.mounts()
            interpreter = Path(sys.base_prefix).resolve()
            if self._hides(interpreter):  # the relay's interpreter, read-only, where hidden
                prefix += ["--ro-bind", str(interpreter), str(interpreter)]
        # The command's own directory stays visible and writable (a worktree kept under the
        # hidden state dir, or in the tmpfs $HOME); then the repository's mounts over it.
        prefix += ["--bind", str(cwd), str(cwd)]
        if self.git is not None:
            prefix += self.git.writable()
        prefix += ["--chdir", str(cwd)]
        if not self.network:
            prefix.append("--unshare-net")
        if relayed:
            assert self.egress is not None
            argv = self.egress.relayed(argv)
        return [*prefix, "--", *argv]

    def _hides(self, path: Path) -> bool:
        """Whether ``path`` is out of sight inside: in the tmpfs ``$HOME`` (not bound back), in
        a hidden place, or in a scratch place replaced by an empty one."""
        if self.home is not None and _within(path, self.home):
            return not any(_within(path, self.home / name) for name in self.home_allow)
        scratch = (Path(place) for place in SHARED_SCRATCH)
        return any(_within(path, place) for place in (*self.hidden, *scratch))

    def _out_of_sight(self, place: Path, shown: list[Path]) -> bool:
        """Whether ``place`` is already gone: in the tmpfs ``$HOME``, not under an allowed
        directory bound back."""
        in_home = self.home is not None and _within(place, self.home)
        return in_home and not any(_within(place, seen) for seen in shown)

    def hiding(self, places: Iterable[Path]) -> Sandbox:
        return replace(self, hidden=tuple(places))

    def with_engines(self, sockets: Iterable[Path], *, allowed: bool = False) -> Sandbox:
        """The container engines' ``sockets`` hidden, or bound in when ``allowed``."""
        return replace(self, engine_sockets=tuple(sockets), containers=allowed)

    def with_home(self, home: Path, allow: Iterable[str] = HOME_ALLOW) -> Sandbox:
        """``home`` replaced by an empty tmpfs but for ``allow`` (relative paths), read-only."""
        return replace(self, home=home, home_allow=tuple(allow))

    def with_egress(self, egress: Egress | None) -> Sandbox:
        """The network reached through ``egress`` (None: no network at all)."""
        return replace(self, egress=egress)

    def with_caches(self, binds: Iterable[tuple[Path, Path]]) -> Sandbox:
        """The repository's package caches bound in read-write: (source, where inside)."""
        return replace(self, caches=tuple(binds))

    def guarding(self, worktree: Path, common_dir: Path) -> Sandbox:
        """The run's repository read-only but for what its worktree needs (:class:`GitLayout`).
        Raises :class:`GitLayoutError` for a worktree that is not one of ``common_dir``'s."""
        return replace(self, git=GitLayout.of(worktree, common_dir))


def _other_worktrees(common: Path, admin: Path) -> tuple[Path, ...]:
    """The working trees of the repository but the run's own: the main one (``core.bare``
    aside, the common dir's parent when it is a ``.git``) and every linked one git records."""
    found = [common.parent] if common.name == ".git" else []
    for record in (common / "worktrees").glob("*/gitdir"):
        if record.parent == admin:
            continue
        try:
            found.append(Path(record.read_text(encoding="utf-8").strip()).parent)
        except (OSError, UnicodeDecodeError):
            continue
    return tuple(path for path in found if path.is_dir())


def for_run(
    found: Sandbox | None,
    *,
    env: Mapping[str, str],
    locus_dirs: Iterable[Path],
    home_allow: Iterable[str],
    worktree: Path,
    common_dir: Path,
    containers: bool = False,
) -> Sandbox | None:
    """The sandbox of one run (None without bwrap): secrets hidden, ``$HOME`` allow-listed, the
    repository guarded, the container engines' sockets hidden unless ``containers``. Built
    before the setup command and the agent run anything."""
    if found is None:
        return None
    boxed = found.hiding(secret_places(env, locus_dirs=locus_dirs))
    boxed = boxed.with_engines(container_sockets(env), allowed=containers)
    if env.get("HOME"):
        boxed = boxed.with_home(Path(env["HOME"]), home_allow)
    return boxed.guarding(worktree, common_dir)


def _within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


@dataclass(frozen=True)
class Probe:
    sandbox: Sandbox | None
    warning: str | None


def probe(*, network: bool = False, path: str | None = None) -> Probe:
    """Whether bwrap is installed and can create the namespaces; a warning saying what is
    missing and how to fix it when not."""
    found = shutil.which("bwrap", path=path)
    if found is None:
        return Probe(
            None,
            "bubblewrap (bwrap) is not installed: commands are contained by process group only"
            " and have network access (install the bubblewrap package)",
        )
    candidate = Sandbox(found, network)
    try:
        done = subprocess.run(  # noqa: S603 - bwrap found on PATH, fixed arguments
            candidate.wrap(["true"], Path("/")),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Probe(None, f"bwrap does not start ({exc}): commands are not contained")
    if done.returncode != 0:
        return Probe(
            None,
            f"bwrap cannot create namespaces here ({done.stderr.strip()}); user namespaces may be"
            " restricted (sysctl kernel.unprivileged_userns_clone / apparmor): commands are"
            " contained by process group only and have network access",
        )
    return Probe(candidate, None)


def containment(agent: AgentConfig) -> Probe:
    """What the user's config asks for, as found on this machine: one answer for runs (their
    reports' warnings) and the daemon (its status and start-up log)."""
    if not agent.sandbox:
        return Probe(
            None,
            "sandbox = false in the [agent] config: commands are contained by process group only"
            " and have network access",
        )
    return probe(network=agent.allow_network)
