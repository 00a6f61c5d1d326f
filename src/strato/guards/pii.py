"""The PII guard: pattern recognisers over normalised text, a policy per entity type, placeholders.

Detection never changes the text; the policy decides per finding whether to allow, flag, redact or
block, and the strictest decision is the verdict's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from strato.config import GuardsSettings, PIIGuardSettings
from strato.guards.ner import SpacyEntities
from strato.guards.normalize import normalize
from strato.guards.recognizers import (
    CONTEXT_BOOST,
    CONTEXT_PENALTY,
    CONTEXT_WINDOW,
    RECOGNIZERS,
    Recognizer,
)
from strato.guards.verdict import (
    Action,
    Direction,
    Finding,
    ScanContext,
    Verdict,
    by_score,
    strictest,
    without_overlaps,
)

Pattern = re.Pattern[str]

ENTITIES = tuple(dict.fromkeys(r.entity for r in RECOGNIZERS))

# Numbers that are identifiers only when they are not part of a sum: "1000-450-300=250" is no phone
# number, "$409 500 - $400 000" no card.
NUMERIC = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN"})
_OPERATOR_BEFORE = frozenset("=*/×÷<>$€£")
_OPERATOR_AFTER = frozenset("=*/×÷<>+%")


class PIIScanner:
    """Finds PII; knows nothing about policy. Spans refer to the text it was given."""

    def __init__(
        self, recognizers: Iterable[Recognizer] = RECOGNIZERS, ner: SpacyEntities | None = None
    ) -> None:
        self.recognizers = tuple(recognizers)
        self.ner = ner
        self._words = {id(r): (_words(r.context), _words(r.against)) for r in self.recognizers}

    def detect(self, text: str, threshold: float = 0.0) -> list[Finding]:
        norm = normalize(text)
        lowered = norm.text.lower()
        candidates: list[Finding] = []
        if self.ner is not None:  # on the original text: a model reads it as a person would
            candidates.extend(f for f in self.ner.detect(text) if f.score >= threshold)
        for rec in self.recognizers:
            support, against = self._words[id(rec)]
            for match in rec.pattern.finditer(norm.text):
                factor = rec.check(match.group(0))
                if factor is None or (rec.entity in NUMERIC and _in_arithmetic(norm.text, match)):
                    continue
                score = rec.score * factor
                score = _in_context(score, lowered, match.start(), match.end(), support, against)
                if score < threshold:
                    continue
                start, end = norm.span(match.start(), match.end())
                candidates.append(Finding(rec.entity, start, end, score, text[start:end]))
        return without_overlaps(candidates, by_score)


class PIIGuard:
    """The `Guard` for PII, applying the configured policy (global, or the model's own)."""

    name = "pii"
    directions: tuple[Direction, ...] = ("input", "output")

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
    score: float, text: str, start: int, end: int, support: Pattern | None, against: Pattern | None
) -> float:
    """Raise the score for a supporting word near the match, lower it for a contrary one. A contrary
    word right before the match ("version 1.2.3.4") wins over a supporting one further away."""
    before = text[max(0, start - CONTEXT_WINDOW // 2) : start]
    window = text[max(0, start - CONTEXT_WINDOW) : end + CONTEXT_WINDOW]
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
    inside = re.search(r"\d\s*[=*×÷/]\s*\d|\d\s+x\s+\d|\$", match.group(0)) is not None
    return inside or before[-1:] in _OPERATOR_BEFORE or after[:1] in _OPERATOR_AFTER


def _with_action(finding: Finding, action: Action) -> Finding:
    return Finding(finding.type, finding.start, finding.end, finding.score, finding.text, action)
