"""The runaway-repetition check: on token sequences, where it cuts a loop and what it leaves alone;
in the engine with the real SmolLM2, the issue's answer stopped early, streamed or not, beside
other requests of the same batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from strato.engine.repetition import WINDOW, RepetitionCheck, RepetitionOptions
from strato.guards.anomalies import content_anomalies
from strato.providers.registry import ModelTable
from strato.types import Chunk
from tests.engine.conftest import SMOLLM, chat, entry, local

# At temperature 0 SmolLM2 answers this with "la femme au martyre, ..." until the context is full:
# 2,011 tokens with the default 2,048-token context, before the engine stopped loops.
LOOPING = "What is the capital of France?"

REFRAIN = ["Sing", " along", " with", " me", ",", " sing", " along", "!\n"]
PHRASE = ["La", " femme", " au", " mart", "yre", ",", " la", " femme", " au", " mart", "yre", "."]


def cut_at(tokens: list[str], min_tokens: int = 64) -> int | None:
    """How many tokens the check lets through before it cuts (None: never)."""
    check = RepetitionCheck(RepetitionOptions(min_tokens=min_tokens))
    for i, token in enumerate(tokens, start=1):
        if check.feed(token):
            return i
    return None


def answer_cut(tokens: list[str], min_tokens: int = 64) -> str:
    at = cut_at(tokens, min_tokens)
    assert at is not None
    return "".join(tokens[:at])


def test_a_loop_is_cut_once_the_detector_flags_it_and_it_covers_min_tokens() -> None:
    tokens = ["The", " capital", " is", " Paris", "."] + [" ", *PHRASE] * 40  # 525 tokens
    at_once = cut_at(tokens, min_tokens=0)
    assert at_once is not None
    answer = "".join(tokens[:at_once])
    # It cuts exactly where the output guard starts to call the answer a loop, not a token earlier.
    assert [f.type for f in content_anomalies(answer)] == ["RUNAWAY_REPETITION"]
    assert content_anomalies("".join(tokens[: at_once - 1])) == []
    # With a margin, later: once the repeated part has taken `min_tokens` tokens.
    later = cut_at(tokens, min_tokens=100)
    assert later is not None and at_once < later <= 5 + 100 + 13
    assert [f.type for f in content_anomalies("".join(tokens[:later]))] == ["RUNAWAY_REPETITION"]


def test_default_margin_on_the_issue_answer_shape() -> None:
    tokens = ["L", "'", "É", "to", "ile", ",", " la", " femme", " au", " mart", "yre", "."]
    tokens += [" ", *PHRASE] * 150  # about 2,000 tokens, as the model gave
    at = cut_at(tokens)
    assert at is not None and at < 100
    assert [f.type for f in content_anomalies(answer_cut(tokens))] == ["RUNAWAY_REPETITION"]


@pytest.mark.parametrize(
    "tokens",
    [
        # A refrain sung four times (a loop, by the detector alone), then the answer goes on.
        ["Chorus", ":\n", *REFRAIN * 4, "The", " end", "."],
        # A numbered list whose items differ only in their number.
        [t for day in range(1, 61) for t in ("Day", f" {day}", ":", " rest", " and", " read", ".\n")],
        # A table of numbers.
        [t for _ in range(100) for t in ("|", " 0", " |", " 0", " |", " 0", " |\n")],
        # A rule line.
        ["-" * 16] * 6,
    ],
)
def test_deliberate_repetition_is_not_cut(tokens: list[str]) -> None:
    assert cut_at(tokens) is None


def test_a_loop_left_before_the_margin_is_not_cut() -> None:
    # Flagged after the fact at its peak (4 turns), but the model moved on before 64 tokens of it.
    looping = ["Intro", " text", ".", "\n"] + ([" ", *PHRASE] * 4)
    assert cut_at(looping, min_tokens=0) is not None
    assert cut_at([*looping, " Then", " something", " else", " entirely", "."]) is None


@pytest.mark.parametrize(
    ("unit", "kind"),
    [([" the"], "REPEATED_TOKEN"), (["\n"], "REPEATED_CHARACTER"), (["!!"], "REPEATED_CHARACTER")],
)
def test_one_word_or_one_character_looping_is_cut(unit: list[str], kind: str) -> None:
    tokens = ["Well", ","] + unit * 500
    check = RepetitionCheck(RepetitionOptions())
    at = next(i for i, token in enumerate(tokens, start=1) if check.feed(token))
    assert check.found is not None and check.found[0] == kind
    assert 64 <= at - 2 < 200


def test_offsets_stay_exact_past_the_window_and_with_case_changes() -> None:
    # A long, loop-free answer pushes the start of the answer out of the judged window; "İ" lowers
    # to two characters, so the check keeps it as it is rather than shift every offset after it.
    prose = [f" word{i} İ" for i in range(3 * WINDOW // 8)]
    loop = [" ", *PHRASE] * 30
    check = RepetitionCheck(RepetitionOptions())
    tokens = prose + loop
    at = next(i for i, token in enumerate(tokens, start=1) if check.feed(token))
    assert check.dropped > 0 and len(prose) < at
    assert check.found is not None
    answer = "".join(tokens[:at])
    assert answer[check.found[1] :].lower().startswith("la femme au martyre")


def kinds(text: str) -> list[str]:
    return [f.type for f in content_anomalies(text)]


async def test_the_looping_answer_stops_early_beside_a_normal_one(
    models: Callable[..., ModelTable],
) -> None:
    provider = local(models(entry("s", **SMOLLM, slots=2, context_length=2048)), "s")
    normal = chat("s", "List five fruits.", temperature=0)
    alone = await provider.generate(normal)

    async def streamed() -> list[Chunk]:
        return [chunk async for chunk in await provider.stream(chat("s", LOOPING, temperature=0))]

    chunks, beside = await asyncio.gather(streamed(), provider.generate(normal))
    last = chunks[-1]
    assert last.finish_reason == "length" and last.usage is not None
    # Cut after about a hundred tokens, with room left for 2,000 more (it used to take them all).
    assert last.usage.completion_tokens < 128
    answer = "".join(chunk.text for chunk in chunks)
    assert kinds(answer) == ["RUNAWAY_REPETITION"]  # the loop is kept: the watch still sees it
    # The normal answer is not cut and is what it is alone, though it ran in the same batch.
    assert alone.finish_reason == beside.finish_reason == "stop"
    assert beside.text == alone.text and kinds(beside.text) == []


async def test_with_the_check_off_the_loop_runs_on(models: Callable[..., ModelTable]) -> None:
    table = models(
        entry("on", **SMOLLM, slots=1, context_length=512),
        entry("off", **SMOLLM, slots=1, context_length=512, stop_repetition=False),
    )
    cut = await local(table, "on").generate(chat("on", LOOPING, temperature=0, max_tokens=128))
    ran = await local(table, "off").generate(chat("off", LOOPING, temperature=0, max_tokens=128))
    assert ran.usage.completion_tokens == 128 and ran.finish_reason == "length"
    assert cut.usage.completion_tokens < 128 and cut.finish_reason == "length"
    # The same greedy answer, cut short by the check and by nothing else.
    assert ran.text.startswith(cut.text) and len(cut.text) < len(ran.text)
    assert kinds(cut.text) == ["RUNAWAY_REPETITION"]
