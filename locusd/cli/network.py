"""What a run's commands did on the network, for ``locus review`` and ``locus agent run``: each
host reached (connections, bytes each way — an upload shows as bytes sent) and each refused,
with the reason. Hosts and reasons are data: rich ``Text``, never markup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from locusd.cli.output import text

if TYPE_CHECKING:
    from rich.text import Text


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    if count < 1_000_000:
        return f"{count / 1000:.1f} kB"
    return f"{count / 1_000_000:.1f} MB"


def network_lines(uses: Sequence[Mapping[str, Any]]) -> list[Text]:
    """One line per host and verdict, refused first; nothing when no command used the network."""
    if not uses:
        return []
    lines = [text(("Network", "bold"), " (through the egress proxy)")]
    for use in sorted(uses, key=lambda u: (bool(u.get("allowed")), str(u.get("host")))):
        where = f"{use.get('host')}:{use.get('port')}"
        count = int(use.get("connections", 0))
        times = f"{count} connection{'s' if count != 1 else ''}"
        reason = str(use.get("reason", ""))
        if use.get("allowed"):
            sent, received = _size(int(use.get("sent", 0))), _size(int(use.get("received", 0)))
            lines.append(text(f"  reached  {where}  {times}, sent {sent}, received {received}"))
        else:
            lines.append(text("  ", ("REFUSED", "red"), f"  {where}  {times} — {reason}"))
    return lines
