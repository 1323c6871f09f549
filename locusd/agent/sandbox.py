"""Containment for the agent's commands with bubblewrap (``bwrap``), when it works here.

A process group is not enough: a grandchild that calls ``setsid`` leaves the group, survives
``killpg`` and keeps running after a timeout or a cancel. In a new PID namespace it cannot: when
the namespace's first process dies, the kernel kills everything in it. A new network namespace
(only a loopback of its own) also keeps a command from sending code anywhere, which is what
"source never leaves the machine" needs from an unattended agent; ``allow_network`` turns that
off for projects whose tests need it.

The filesystem is the user's own (``--bind / /``): commands run with the user's rights, as they
would by hand; the file tools, not bwrap, confine the agent's reads and writes.

Where bwrap is missing or user namespaces are restricted, :func:`probe` says so and commands run
with process-group containment only.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sandbox:
    bwrap: str
    network: bool

    def wrap(self, argv: list[str], cwd: Path) -> list[str]:
        prefix = [
            *(self.bwrap, "--die-with-parent", "--unshare-pid", "--bind", "/", "/"),
            *("--dev", "/dev", "--proc", "/proc", "--chdir", str(cwd)),
        ]
        if not self.network:
            prefix.append("--unshare-net")
        return [*prefix, "--", *argv]


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
