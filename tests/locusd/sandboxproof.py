"""The proof, asked from inside an agent's command, that a run really contained it: a PID
namespace and a network namespace of its own (not the test process's, which is the daemon's
and the runner's), and the loopback model server the run talks to out of its reach. The
runner test and the daemon/CLI test share it so both check the same things, from the output
the model was sent back."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from tests.locusd.agentkit import call, result_text, tool_results
from tests.support.anthropic_server import AnthropicServer, Reply


def probe(base_url: str) -> str:
    """A bash command printing ``key=value`` lines: its shell's PID, its namespaces, and whether
    it can open a TCP connection to ``base_url`` (the model server, listening on loopback)."""
    port = urlsplit(base_url).port
    return (
        'echo "pid=$$"; echo "pidns=$(readlink /proc/self/ns/pid)";'
        ' echo "netns=$(readlink /proc/self/ns/net)";'
        f" if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null;"
        ' then echo "model=reached"; else echo "model=unreachable"; fi'
    )


def seen_inside(output: str) -> dict[str, str]:
    """The probe's ``key=value`` lines from a command's output."""
    pairs = (line.split("=", 1) for line in output.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def assert_sandboxed(output: str) -> None:
    """Fails, showing what the command saw, unless it ran in namespaces of its own."""
    seen = seen_inside(output)
    assert seen.get("pidns", "").startswith("pid:["), output  # the probe did run
    assert seen["pidns"] != os.readlink("/proc/self/ns/pid"), f"not in a PID namespace: {output}"
    assert seen["netns"] != os.readlink("/proc/self/ns/net"), f"not in a net namespace: {output}"
    assert seen["model"] == "unreachable", f"the command reached the model server: {output}"


def probing_model() -> AnthropicServer:
    """A loopback model that has the run execute :func:`probe` (aimed at itself), then asks
    the user something, so the run ends needing input; the probe's output is in the tool_result
    of ``requests[1]``."""

    def turn(body: dict[str, Any]) -> Reply:
        if len(body["messages"]) == 1:
            return call("run_command", command=probe(server.base_url))
        return call("ask_user", question="probed: anything else?")

    server = AnthropicServer(turn)
    return server


def probed(server: AnthropicServer) -> str:
    """What the probe printed, as the model was sent it."""
    (block,) = tool_results(server.requests[1])
    return result_text(block)
