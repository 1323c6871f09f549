"""What an external agent's model calls cost, as the run's model gateway saw them: each call
into the transcript (a ``model_call`` record) and the journal of connections, summed for the
budget. The budget takes the larger of this and what the agent reports, so an agent that
under-reports (or reports nothing, as Codex and Gemini CLI do for cost) gains nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from locusd.agent.egress.journal import Journal
from locusd.agent.egress.proxy import Connection
from locusd.agent.external.gateway import ModelCall
from locusd.agent.messages import Usage
from locusd.agent.providers.pricing import Price, lookup
from locusd.agent.transcript import ModelCallRecord, TranscriptWriter


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class Meter:
    """The run's metered model use; ``on_change`` hears of each call once it is counted."""

    endpoint: str  # host:port of the upstream, as the journal names it
    transcript: TranscriptWriter
    journal: Journal
    on_change: Callable[[], None]
    #: The user's configured price; else the model's, by the name the server answered with.
    price: Price | None = None
    #: Why the gateway refuses further calls (the run is ending), or None.
    refusal: Callable[[], str | None] = lambda: None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    calls: int = 0
    unpriced: int = 0  # calls with usage whose model has no price

    @property
    def cost_known(self) -> bool:
        return self.calls > 0 and self.unpriced == 0

    def record(self, call: ModelCall) -> None:
        cost: float | None = None
        if call.usage is not None:
            self.calls += 1
            self.usage += call.usage
            price = self.price or (lookup(call.model) if call.model else None)
            if price is None:
                self.unpriced += 1
            else:
                cost = price.cost(call.usage)
                self.cost += cost
        self.transcript.write(
            ModelCallRecord(
                method=call.method, path=call.path, status=call.status, format=call.format,
                refused=call.refused, model=call.model, usage=call.usage,
                cost_usd=None if cost is None else round(cost, 6), problem=call.problem,
                sent=call.sent, received=call.received, duration=call.duration,
            )
        )  # fmt: skip
        host, port = _host_port(self.endpoint)
        reason = call.refused or "a model call through the run's model gateway (metered)"
        self.journal.add(
            Connection(
                host, port, call.method, call.refused is None, reason,
                sent=call.sent, received=call.received, duration=call.duration,
            )
        )  # fmt: skip
        self.on_change()

    def spent(self, reported: Usage, reported_cost: float) -> tuple[Usage, float]:
        """The run's usage and cost for its budget and report: the larger of what the model
        server said (metered here) and what the agent reported."""
        usage = self.usage if self.usage.total_tokens > reported.total_tokens else reported
        return usage, max(self.cost, reported_cost)
