"""The base of every protocol message: camelCase on the wire, snake_case in Python, unknown
fields tolerated (a newer client or daemon may send more), validated by pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        defer_build=True,
    )

    def wire(self) -> dict[str, object]:
        """The JSON-ready dict sent over the socket (camelCase, no None-valued fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Empty(Wire):
    """Params or result of a method that carries nothing."""
