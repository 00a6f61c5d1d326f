"""The words guard blocks banned words however they are disguised, and banned topics by meaning."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pytest

from strato.config import GuardsSettings
from strato.guards.verdict import ScanContext
from strato.guards.words import WordsGuard, sentences


def settings(**words: Any) -> GuardsSettings:
    return GuardsSettings.model_validate({"words": words})


class CountingEmbed:
    """A stand-in embedding: one dimension per keyword group, so "on topic" is easy to arrange."""

    GROUPS = (("bitcoin", "crypto", "ethereum", "coin"), ("vote", "election", "senator"), ("cake", "bake"))

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[0.1 + sum(w in t.lower() for w in group) for group in self.GROUPS] for t in texts]


def scan(guard: WordsGuard, text: str, **words: Any) -> Any:
    return guard.scan_now(text, ScanContext("input", settings=settings(**words)))


def test_nothing_configured_allows_at_once_without_an_embedding_model() -> None:
    embed = CountingEmbed()
    guard = WordsGuard(embed=embed)
    verdict = guard.scan_now("anything at all", ScanContext("input"))
    assert (verdict.action, verdict.findings) == ("allow", [])
    assert embed.calls == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Tell me about Project Falcon.", "Project Falcon"),
        ("tell me about PROJECT   falcon", "PROJECT   falcon"),
        ("project\nfalcon details", "project\nfalcon"),
        ("Proj\u200bect Fal\u200dcon", "Proj\u200bect Fal\u200dcon"),  # zero-width characters
        ("Prоject Fаlcon", "Prоject Fаlcon"),  # Cyrillic о and а
        ("ＰＲＯＪＥＣＴ falcon", "ＰＲＯＪＥＣＴ falcon"),  # full width
    ],
)
def test_banned_phrase_found_however_disguised(text: str, match: str) -> None:
    verdict = scan(WordsGuard(), text, words=["project falcon"])
    assert verdict.action == "block"
    assert [(f.type, f.text) for f in verdict.findings] == [("BANNED_WORD", match)]


@pytest.mark.parametrize(
    "text", ["the falconry club", "projects falcon", "Project Falcons", "project-falcon"]
)
def test_only_whole_words_match(text: str) -> None:
    assert scan(WordsGuard(), text, words=["project falcon"]).findings == []


def test_part_of_a_word_is_not_the_word() -> None:
    verdict = scan(WordsGuard(), "a classic assessment; Ass!", words=["ass"])
    assert [f.text for f in verdict.findings] == ["Ass"]


def test_redact_replaces_each_banned_word() -> None:
    guard = WordsGuard()
    verdict = scan(guard, "Acme and ACME again, then Globex.", words=["acme", "globex"], action="redact")
    assert verdict.action == "redact"
    assert verdict.text == "<BANNED_WORD_1> and <BANNED_WORD_2> again, then <BANNED_WORD_3>."


def test_the_guards_own_settings_when_the_request_has_none() -> None:
    guard = WordsGuard(settings(words=["acme"], action="flag"))
    for direction in ("input", "output"):
        verdict = guard.scan_now("ask Acme", ScanContext(direction))
        assert verdict.action == "flag" and verdict.findings[0].action == "flag"


def test_sentences() -> None:
    text = "First one. Second one?\n\nA paragraph\n- an item\n- another item"
    assert [text[s:e] for s, e in sentences(text)] == [
        "First one.",
        "Second one?",
        "A paragraph",
        "- an item",
        "- another item",
    ]
    long = " ".join(["word"] * 200)
    assert len(sentences(long)) == 3  # read in windows of 80 words


async def test_topics_by_similarity_with_an_injected_embedding() -> None:
    embed = CountingEmbed()
    guard = WordsGuard(embed=embed)
    policy = settings(topics=["crypto coins", "election votes"], topic_threshold=0.8)
    text = "I like to bake a cake. Should I buy Bitcoin or Ethereum now? Thanks."
    verdict = await guard.scan(text, ScanContext("input", settings=policy))
    assert verdict.action == "block"
    [finding] = verdict.findings
    assert finding.type == "BANNED_TOPIC" and finding.text == "Should I buy Bitcoin or Ethereum now?"
    assert 0.8 <= finding.score <= 1.0
    # The topics are embedded once and kept.
    await guard.scan("Who gets my vote?", ScanContext("input", settings=policy))
    assert embed.calls[0] == ["crypto coins", "election votes"]
    assert len(embed.calls) == 3


async def test_words_alone_never_embed() -> None:
    embed = CountingEmbed()
    verdict = await WordsGuard(embed=embed).scan(
        "ask acme", ScanContext("input", settings=settings(words=["acme"]))
    )
    assert verdict.action == "block" and embed.calls == []


async def test_a_banned_word_inside_a_banned_sentence_is_redacted_once() -> None:
    guard = WordsGuard(embed=CountingEmbed())
    policy = settings(words=["bitcoin"], topics=["crypto coin"], topic_threshold=0.8, action="redact")
    verdict = await guard.scan("Hello. Buy bitcoin now!", ScanContext("input", settings=policy))
    assert verdict.text == "Hello. <BANNED_TOPIC_1>"


async def test_topics_with_the_embedded_minilm() -> None:
    """The real model, with a topic described in a few words: an on-topic question scores above 0.3,
    everyday ones below (measured: on-topic median 0.38, everyday questions at most 0.21)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    guard = WordsGuard()
    policy = settings(
        topics=["cryptocurrency investing: buying Bitcoin, crypto coins, tokens, trading"],
        topic_threshold=0.3,
    )
    context = ScanContext("input", settings=policy)
    on = await guard.scan("Which altcoin will go up 10x this year? I have savings to invest.", context)
    off = await guard.scan("How do I reverse a linked list in Python? Show me the code.", context)
    assert on.action == "block" and on.findings[0].text == "Which altcoin will go up 10x this year?"
    assert off.action == "allow"


async def test_action_allow_scans_nothing() -> None:
    embed = CountingEmbed()
    policy = settings(words=["acme"], topics=["crypto coins"], action="allow")
    verdict = await WordsGuard(embed=embed).scan("Acme sells bitcoin", ScanContext("input", settings=policy))
    assert (verdict.action, verdict.findings, embed.calls) == ("allow", [], [])
