"""What tokens cost, per model, in USD per million tokens.

Cache writes cost 1.25x and cache reads 0.1x the input price (Anthropic's 5-minute cache). A
model that is not in the table has an unknown cost (None) unless the user configures a price;
local models (the openai provider against Ollama and friends) are free unless priced.
"""

from __future__ import annotations

from dataclasses import dataclass

from locusd.agent.messages import Usage


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float  # USD per million output tokens
    cache_write_factor: float = 1.25
    cache_read_factor: float = 0.1

    def cost(self, usage: Usage) -> float:
        per_token = self.input / 1e6
        return (
            usage.input_tokens * per_token
            + usage.cache_write_tokens * per_token * self.cache_write_factor
            + usage.cache_read_tokens * per_token * self.cache_read_factor
            + usage.output_tokens * self.output / 1e6
        )


#: Longest matching prefix wins, so dated snapshots share their family's price. Newer models
#: are priced in the config (``price_input_per_mtok`` / ``price_output_per_mtok``).
ANTHROPIC_PRICES: dict[str, Price] = {
    "claude-opus-4-6": Price(5.0, 25.0),
    "claude-opus-4-5": Price(5.0, 25.0),
    "claude-opus-4-1": Price(15.0, 75.0),
    "claude-opus-4": Price(15.0, 75.0),
    "claude-sonnet-4": Price(3.0, 15.0),
    "claude-haiku-4": Price(1.0, 5.0),
    "claude-3-5-haiku": Price(0.8, 4.0),
}


def lookup(model: str, table: dict[str, Price] = ANTHROPIC_PRICES) -> Price | None:
    matches = [prefix for prefix in table if model.startswith(prefix)]
    return table[max(matches, key=len)] if matches else None
