"""The model gateway's usage readers on streams in each API's recorded shape: the tokens read
are the same however the bytes arrive (split at every byte boundary, and in random pieces),
a stream cut short keeps what came before the cut, and nothing a server sends crashes them."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from locusd.agent.external.usage import MAX_EVENT, Metered, UsageReader, format_of
from locusd.agent.messages import Usage


def sse(*events: dict[str, object], named: bool = True, crlf: bool = False) -> bytes:
    end = "\r\n" if crlf else "\n"
    frames = []
    for event in events:
        head = f"event: {event.get('type')}{end}" if named else ""
        frames.append(f"{head}data: {json.dumps(event)}{end}{end}")
    return "".join(frames).encode()


ANTHROPIC_SSE = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [], "stop_reason": None,
            "usage": {
                "input_tokens": 12, "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 4000, "output_tokens": 1,
            },
        },
    },
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hé"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 57}},
    {"type": "message_stop"},
)  # fmt: skip
ANTHROPIC_USAGE = Usage(
    input_tokens=12, output_tokens=57, cache_read_tokens=4000, cache_write_tokens=300
)
RESPONSES_SSE = sse(
    {"type": "response.created", "response": {"id": "r", "status": "in_progress", "usage": None}},
    {"type": "response.output_text.delta", "delta": "data: {\"usage\": 1}"},
    {
        "type": "response.completed",
        "response": {
            "id": "r", "object": "response", "model": "gpt-5.3-codex", "status": "completed",
            "usage": {
                "input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096},
                "output_tokens": 80, "output_tokens_details": {"reasoning_tokens": 20},
                "total_tokens": 5080,
            },
        },
    },
    crlf=True,
) + b"data: [DONE]\n\n"  # fmt: skip
RESPONSES_USAGE = Usage(input_tokens=904, output_tokens=80, cache_read_tokens=4096)


def gemini_chunk(text: str, usage: dict[str, int]) -> dict[str, object]:
    parts = [{"text": text}]
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-pro",
    }


GEMINI_CHUNKS = [
    gemini_chunk("Hel", {"promptTokenCount": 900, "totalTokenCount": 900}),
    gemini_chunk(
        "lo",
        {
            "promptTokenCount": 900, "cachedContentTokenCount": 512, "candidatesTokenCount": 7,
            "thoughtsTokenCount": 30, "totalTokenCount": 937,
        },
    ),
]  # fmt: skip
GEMINI_SSE = sse(*GEMINI_CHUNKS, named=False, crlf=True)
GEMINI_USAGE = Usage(input_tokens=388, output_tokens=37, cache_read_tokens=512)

CASES = [
    ("anthropic", True, ANTHROPIC_SSE, ANTHROPIC_USAGE, "claude-sonnet-4-5"),
    ("responses", True, RESPONSES_SSE, RESPONSES_USAGE, "gpt-5.3-codex"),
    ("gemini", True, GEMINI_SSE, GEMINI_USAGE, "gemini-2.5-pro"),
    ("gemini", False, json.dumps(GEMINI_CHUNKS).encode(), GEMINI_USAGE, "gemini-2.5-pro"),
    ("gemini", False, json.dumps(GEMINI_CHUNKS[-1]).encode(), GEMINI_USAGE, "gemini-2.5-pro"),
]


def read(fmt: str, is_sse: bool, pieces: list[bytes]) -> Metered:
    reader = UsageReader(format_of({"anthropic": "/v1/messages", "responses": "/v1/responses",
                                    "gemini": "/v1beta/models/m:generateContent"}[fmt]),
                         sse=is_sse)  # fmt: skip
    for piece in pieces:
        reader.feed(piece)
    return reader.finish()


def test_each_format_read_whole_and_split_at_every_byte() -> None:
    for fmt, is_sse, stream, usage, model in CASES:
        for cut in range(len(stream) + 1):
            metered = read(fmt, is_sse, [stream[:cut], stream[cut:]])
            assert (metered.usage, metered.model) == (usage, model), (fmt, cut)


@given(st.sampled_from(range(len(CASES))), st.lists(st.floats(0, 1), max_size=30))
def test_any_pieces_read_the_same(case: int, cuts: list[float]) -> None:
    fmt, is_sse, stream, usage, model = CASES[case]
    points = sorted({int(c * len(stream)) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    metered = read(fmt, is_sse, pieces)
    assert (metered.usage, metered.model) == (usage, model)


def test_an_anthropic_json_answer_and_a_responses_json_answer() -> None:
    message = {"type": "message", "model": "claude-haiku-4-5", "usage": {
        "input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 5}}  # fmt: skip
    got = read("anthropic", False, [json.dumps(message).encode()])
    assert got.usage == Usage(input_tokens=3, output_tokens=4, cache_read_tokens=5)
    response = {
        "object": "response",
        "model": "gpt-5",
        "usage": {"input_tokens": 9, "output_tokens": 2},
    }
    got = read("responses", False, [json.dumps(response).encode()])
    assert got.usage == Usage(input_tokens=9, output_tokens=2)


def test_a_stream_cut_short_counts_what_came_before_the_cut() -> None:
    cut = ANTHROPIC_SSE[: ANTHROPIC_SSE.index(b"event: message_delta")]
    got = read("anthropic", True, [cut])
    assert got.usage == Usage(input_tokens=12, output_tokens=1, cache_read_tokens=4000,
                              cache_write_tokens=300)  # fmt: skip


def test_unknown_paths_and_hostile_values_give_no_crash_and_no_tokens() -> None:
    assert format_of("/v1/messages/count_tokens") == "unknown"
    assert format_of("/v1/models") == "unknown"
    assert read("anthropic", True, [b"data: {not json\n\n", b"\xff\xfe\n\n"]).usage is None
    hostile = {"type": "message", "usage": {"input_tokens": -5, "output_tokens": True,
                                            "cache_read_input_tokens": "9", "x": 10**40}}  # fmt: skip
    assert read("anthropic", False, [json.dumps(hostile).encode()]).usage == Usage()
    huge = {"type": "message", "usage": {"input_tokens": 10**40}}
    assert read("anthropic", False, [json.dumps(huge).encode()]).usage == Usage(input_tokens=10**12)
    got = read("responses", False, [b'[1, 2, {"object": 3}]'])
    assert got.usage is None and got.problem is None


def test_an_over_long_event_is_skipped_and_said_and_the_rest_is_read() -> None:
    long = b"data: " + b"x" * (MAX_EVENT + 10) + b"\n\n"
    got = read("anthropic", True, [long[:1000], long[1000:], ANTHROPIC_SSE])
    assert got.usage == ANTHROPIC_USAGE
    assert got.problem is not None and "over" in got.problem


def test_the_tail_of_an_over_long_line_is_not_read_as_a_line_of_its_own() -> None:
    """Past the bound the rest of the line is skipped to its end: a tail that looks like an
    event (a model's echo, cut at the bound) cannot change the usage read."""
    tail = b'data: {"type": "message_delta", "usage": {"output_tokens": 999}}\n\n'
    got = read("anthropic", True, [ANTHROPIC_SSE, b"data: " + b"x" * MAX_EVENT, tail])
    assert got.usage == ANTHROPIC_USAGE
