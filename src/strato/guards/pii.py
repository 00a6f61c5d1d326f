"""The PII guard: pattern recognisers over normalised text, a policy per entity type, placeholders.

Spaced-out identifiers ("j o h n @ e x a m p l e . c o m", "4 1 1 1 ...") are looked for a second
time in the text with those runs closed up; findings always point at what the sender wrote.

Detection never changes the text; the policy decides per finding whether to allow, flag, redact or
block, and the strictest decision is the verdict's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from strato.config import GuardsSettings, PIIGuardSettings
from strato.guards.ner import SpacyEntities
from strato.guards.normalize import Normalized, closed_up, normalize
from strato.guards.recognizers import (
    CONTEXT_BOOST,
    CONTEXT_PENALTY,
    CONTEXT_WINDOW,
    RECOGNIZERS,
    Recognizer,
)
from strato.guards.verdict import (
    REWRITING,
    Action,
    Direction,
    Finding,
    ScanContext,
    Verdict,
    by_score,
    strictest,
    without_overlaps,
)

if TYPE_CHECKING:
    from strato.providers.registry import ModelTable

Pattern = re.Pattern[str]

ENTITIES = tuple(dict.fromkeys(r.entity for r in RECOGNIZERS))

# Numbers that are identifiers only when they are not part of a sum: "1000-450-300=250" is no phone
# number, "$409 500 - $400 000" no card.
NUMERIC = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN"})
_OPERATOR_BEFORE = frozenset("=*/×÷<>$€£")
_OPERATOR_AFTER = frozenset("=*/×÷<>+%")
_GROUPING_SLASH = re.compile(r"(?<=\d{4})[ \t]*/[ \t]*(?=\d{4})")  # "4111/1111/...": no division
# Nobody spells a street address out letter by letter, and its patterns are the costly ones.
_NOT_SPACED_OUT = frozenset({"STREET_ADDRESS"})


class PIIScanner:
    """Finds PII; knows nothing about policy. Spans refer to the text it was given."""

    def __init__(
        self, recognizers: Iterable[Recognizer] = RECOGNIZERS, ner: SpacyEntities | None = None
    ) -> None:
        self.recognizers = tuple(recognizers)
        self.ner = ner
        self._words = {id(r): (_words(r.context), _words(r.against)) for r in self.recognizers}
        self._spaced_out = tuple(r for r in self.recognizers if r.entity not in _NOT_SPACED_OUT)

    def detect(self, text: str, threshold: float = 0.0) -> list[Finding]:
        norm = normalize(text)
        candidates: list[Finding] = []
        if self.ner is not None:  # on the original text: a model reads it as a person would
            candidates.extend(f for f in self.ner.detect(text) if f.score >= threshold)
        for rec, start, end, score in self._matches(norm.text, self.recognizers, threshold):
            start, end = norm.span(start, end)
            candidates.append(Finding(rec.entity, start, end, score, text[start:end]))
        candidates.extend(self._closed_up(text, norm, threshold))
        return without_overlaps(candidates, by_score)

    def _closed_up(self, text: str, norm: Normalized, threshold: float) -> Iterator[Finding]:
        """What the text holds once spaced-out words are closed up ("j o h n @ e x a m p l e . c o m"),
        where the match takes in closed-up spaces (the rest was found already). Such a finding must
        stand on its own, without a context word: "the number sequence 4 8 1 5 9 2 6 3" holds no
        phone number. A number must be spaced out all along, not single digits next to longer
        groups ("3 9 5 2 11 1" is a list)."""
        spaced = closed_up(norm.text)
        if spaced is None:
            return
        for rec, start, end, score in self._matches(spaced.text, self._spaced_out, threshold, boost=False):
            first, last = spaced.span(start, end)
            if last - first == end - start:  # no closed-up space in it
                continue
            if rec.entity in NUMERIC and " " in spaced.text[start:end]:
                continue
            first, last = norm.span(first, last)
            yield Finding(rec.entity, first, last, score, text[first:last])

    def _matches(
        self, text: str, recognizers: Iterable[Recognizer], threshold: float, boost: bool = True
    ) -> Iterator[tuple[Recognizer, int, int, float]]:
        """Each recogniser's checked matches in `text` scoring at least `threshold`, with the score.
        `boost`: supporting words near a match may raise its score (contrary ones always lower it)."""
        lowered = text.lower()
        for rec in recognizers:
            words = self._words[id(rec)]
            for match in rec.pattern.finditer(text):
                factor = rec.check(match.group(0))
                if factor is None or (rec.entity in NUMERIC and _in_arithmetic(text, match)):
                    continue
                base = rec.score * factor
                score = _in_context(base, lowered, match.span(), words, rec.context_inside)
                if not boost:
                    score = min(score, base)
                if score >= threshold:
                    yield rec, match.start(), match.end(), score


class PIIGuard:
    """The `Guard` for PII, applying the configured policy (global, or the model's own)."""

    name = "pii"
    directions: tuple[Direction, ...] = ("input", "output")
    order = 20

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> PIIGuard:
        return cls(settings)

    def rewrites(self, settings: GuardsSettings) -> bool:
        output = settings.pii.output
        return settings.pii.enabled and any(
            a in REWRITING for a in (output.action, *output.entities.values())
        )

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        policy = settings.pii
        if not policy.enabled or (direction == "input" and not policy.enforce):
            return False  # on requests the input policy is opt-in
        rules = policy.input if direction == "input" else policy.output
        return any(a != "allow" for a in (rules.action, *rules.entities.values()))

    def __init__(self, settings: GuardsSettings, scanner: PIIScanner | None = None) -> None:
        self.settings = settings
        if scanner is None and settings.pii.ner_model:
            ner = SpacyEntities(settings.pii.ner_model)
            ner.load()  # at startup, so a missing package is a configuration error
            scanner = PIIScanner(ner=ner)
        self.scanner = scanner or PIIScanner()

    def policy(self, model: str | None) -> PIIGuardSettings:
        return self.settings.pii_for(model)

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        return self.scan_now(text, context)

    def scan_now(self, text: str, context: ScanContext) -> Verdict:
        """`scan` without the coroutine: the work is CPU-bound and takes well under a millisecond."""
        policy = context.settings.pii if context.settings is not None else self.policy(context.model)
        if not policy.enabled or (
            context.role is not None and context.direction == "input" and not policy.enforce
        ):
            return Verdict("allow", text, [], self.name)  # on requests the input policy is opt-in
        rules = policy.input if context.direction == "input" else policy.output
        findings = [
            _with_action(f, rules.entities.get(f.type, rules.action))
            for f in self.scanner.detect(text, policy.score_threshold)
        ]
        findings = [f for f in findings if f.action != "allow"]
        action = strictest([f.action for f in findings])
        if action == "redact":
            redacted = [f for f in findings if f.action == "redact"]
            text = context.placeholders.redact(text, redacted)
        return Verdict(action, text, findings, self.name)


def _words(words: tuple[str, ...]) -> Pattern | None:
    if not words:
        return None
    return re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(w) for w in words) + r")(?![a-z])")


def _in_context(
    score: float, text: str, span: tuple[int, int], words: tuple[Pattern | None, Pattern | None], inside: bool
) -> float:
    """Raise the score for a supporting word near the match, lower it for a contrary one. A contrary
    word right before the match ("version 1.2.3.4") wins over a supporting one further away.
    `inside`: the match's own words count too."""
    (start, end), (support, against) = span, words
    before = text[max(0, start - CONTEXT_WINDOW // 2) : start]
    if inside:
        window = text[max(0, start - CONTEXT_WINDOW) : end + CONTEXT_WINDOW]
    else:
        window = text[max(0, start - CONTEXT_WINDOW) : start] + " " + text[end : end + CONTEXT_WINDOW]
    if against is not None and against.search(before):
        return max(0.0, score - CONTEXT_PENALTY)
    if support is not None and support.search(window):
        return min(1.0, score + CONTEXT_BOOST)
    if against is not None and against.search(window):
        return max(0.0, score - CONTEXT_PENALTY)
    return score


def _in_arithmetic(text: str, match: re.Match[str]) -> bool:
    """Whether a number sits in a calculation: an operator or a currency sign right before it, an
    operator right after it, or one inside it (`350 000 x 5`)."""
    before = text[max(0, match.start() - 3) : match.start()].rstrip()
    after = text[match.end() : match.end() + 3].lstrip()
    body = _GROUPING_SLASH.sub(" ", match.group(0))
    inside = re.search(r"\d\s*[=*×÷/]\s*\d|\d\s+x\s+\d|\$", body) is not None
    return inside or before[-1:] in _OPERATOR_BEFORE or after[:1] in _OPERATOR_AFTER


def _with_action(finding: Finding, action: Action) -> Finding:
    return Finding(finding.type, finding.start, finding.end, finding.score, finding.text, action)
