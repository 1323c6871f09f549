"""Every benchmark, one command: ``.venv/bin/python -m bench.all`` (about 9 minutes on 2 cores).

Runs the dispatch (``python -m bench``), worktree (``python -m bench.worktrees``), agent
(``python -m bench.agent``, with the external ACP agents: Node 20 needed), daemon (``python -m bench.daemon``), CLI start-up
(``python -m bench.startup``), dashboard (``python -m bench.dashboard``), output-flood
(``python -m bench.flood``), login-flood (``python -m bench.logins``), event-stream
(``python -m bench.streams``), stream re-check (``python -m bench.rechecks``), graph-upload
(``python -m bench.graphupload``), graph-index (``python -m bench.graphindex``), conflict-aware claim
(``python -m bench.footprints``), search
(``python -m bench.search``), model-gateway
(``python -m bench.gateway``) and install
(``python -m bench.installs``) suites one after the other with their defaults, each printing its figures against their targets; exits 1 if
any missed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import __main__ as dispatch
from bench import (
    agent,
    daemon,
    dashboard,
    flood,
    footprints,
    gateway,
    graphindex,
    graphupload,
    installs,
    logins,
    rechecks,
    search,
    startup,
    streams,
    worktrees,
)

SUITES: dict[str, Callable[[list[str] | None], int]] = {
    "dispatch": dispatch.main,
    "worktrees": worktrees.main,
    "agent": agent.main,
    "daemon": daemon.main,
    "startup": startup.main,
    "dashboard": dashboard.main,
    "flood": flood.main,
    "logins": logins.main,
    "streams": streams.main,
    "rechecks": rechecks.main,
    "graphupload": graphupload.main,
    "graphindex": graphindex.main,
    "footprints": footprints.main,
    "search": search.main,
    "gateway": gateway.main,
    "installs": installs.main,
}


def main() -> int:
    missed = []
    for name, suite in SUITES.items():
        print(f"\n== {name}", flush=True)
        if suite([]) != 0:
            missed.append(name)
    print(f"\n{'MISS in ' + ', '.join(missed) if missed else 'all suites PASS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
