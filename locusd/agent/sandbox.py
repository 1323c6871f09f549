"""Containment for the agent's commands with bubblewrap (``bwrap``), when it works here.

A process group is not enough: a grandchild that calls ``setsid`` leaves the group, survives
``killpg`` and keeps running after a timeout or a cancel. In a new PID namespace it cannot: when
the namespace's first process dies, the kernel kills everything in it. A new network namespace
(only a loopback of its own) also keeps a command from sending code anywhere, which is what
"source never leaves the machine" needs from an unattended agent; ``allow_network`` turns that
off for projects whose tests need it.

The filesystem is the user's own (``--bind / /``): commands run with the user's rights, as they
would by hand; the file tools, not bwrap, confine the agent's reads and writes. What holds
secrets or reaches the daemon is hidden (:func:`secret_places`): the runtime directory (the
daemon's socket, ssh and gpg agents), Locus's own config and state (the cloud token, other runs'
transcripts), and the usual credential stores in ``$HOME`` — an empty tmpfs over a directory,
``/dev/null`` over a file. A deny-list, so a store it does not name stays readable.

Where bwrap is missing or user namespaces are restricted, :func:`probe` says so and commands run
with process-group containment only.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from locusd.config import AgentConfig

#: Credential stores under ``$HOME`` that no command of the agent's needs.
HOME_SECRETS = (
    *(".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".netrc", ".git-credentials"),
    *(".pypirc", ".npmrc", ".config/gcloud", ".config/gh", ".config/hub", ".password-store"),
)


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


@dataclass(frozen=True)
class Sandbox:
    bwrap: str
    network: bool
    hidden: tuple[Path, ...] = ()
    scratch: Path | None = None  # the run's $TMPDIR: writable even under a hidden place

    def wrap(self, argv: list[str], cwd: Path) -> list[str]:
        prefix = [
            *(self.bwrap, "--die-with-parent", "--unshare-pid", "--bind", "/", "/"),
            *("--dev", "/dev", "--proc", "/proc"),
        ]
        for place in self.hidden:
            if place == cwd or place in cwd.parents:
                continue  # the command's own directory stays (a worktree kept under state)
            if place.is_dir():
                prefix += ["--tmpfs", str(place)]
            elif place.exists():
                prefix += ["--ro-bind", "/dev/null", str(place)]
        if self.scratch is not None:  # after the hiding: it lives under Locus's state
            prefix += ["--bind", str(self.scratch), str(self.scratch)]
        prefix += ["--chdir", str(cwd)]
        if not self.network:
            prefix.append("--unshare-net")
        return [*prefix, "--", *argv]

    def hiding(self, places: Iterable[Path]) -> Sandbox:
        return replace(self, hidden=tuple(places))


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
