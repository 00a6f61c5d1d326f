"""Scorers that compare the answer's text with the expected one: exact and normalised match,
contains, a regular expression, and the final number of a worked answer (GSM8K)."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from typing import Any, ClassVar

from strato.evals.scorers import Options, ScorerError, as_text, references, unanswered
from strato.evals.types import Answer, Case, Judgement, Target

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)

# A number as people write one: 1,234.5 / -3 / $18 / .5 (commas and $ are dropped when read).
_NUMBER = re.compile(r"(?<![\w.])(-)?\$?\s?(-)?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_MARKED = re.compile(r"####")
_SAID = re.compile(r"answer\s*(?:is|=|:)\s*[:=]?", re.IGNORECASE)
_BOXED = re.compile(r"\\boxed\s*\{([^{}]*)\}")


class ExactMatch:
    """1 when the answer is the expected text, both stripped of surrounding whitespace."""

    name = "exact"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        Options(self.name, params).done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer)) is not None:
            return skip
        text = (answer.text or "").strip()
        return _verdict(any(text == ref.strip() for ref in references(case.expected)))


class NormalisedMatch:
    """SQuAD's exact match: lower case, no punctuation, no articles (a, an, the), single spaces."""

    name = "normalised"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        Options(self.name, params).done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer)) is not None:
            return skip
        text = normalise(answer.text or "")
        return _verdict(any(text == normalise(ref) for ref in references(case.expected)))


def normalise(text: str) -> str:
    lowered = text.lower()
    kept = "".join(
        " " if c in _PUNCTUATION or unicodedata.category(c).startswith("P") else c for c in lowered
    )
    return " ".join(_ARTICLES.sub(" ", kept).split())


class Contains:
    """1 when the expected text (or `text=`) occurs in the answer, in any case."""

    name = "contains"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        self.text = options.text("text")
        options.done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer, needs_expected=self.text is None)) is not None:
            return skip
        wanted = [self.text] if self.text is not None else references(case.expected)
        found = (answer.text or "").casefold()
        hits = [w for w in wanted if w.strip().casefold() in found]
        return _verdict(bool(hits), {"found": hits[0]} if hits else {})


class RegexMatch:
    """1 when `pattern=` matches somewhere in the answer (`flags=` i, m, s: ignore case, multi-line,
    dot matches newlines). Anchor it (^...$) to match the whole answer."""

    name = "regex"
    FLAGS: ClassVar[dict[str, re.RegexFlag]] = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        pattern = options.required("pattern", "a regular expression the answer must match")
        flags = 0
        for letter in options.text("flags", "") or "":
            if letter not in self.FLAGS:
                raise ScorerError(f"scorer regex: flags={letter!r}: use i, m or s")
            flags |= self.FLAGS[letter]
        options.done()
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ScorerError(f"scorer regex: invalid pattern {pattern!r}: {exc}") from None

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer, needs_expected=False)) is not None:
            return skip
        found = self.pattern.search(answer.text or "")
        return _verdict(found is not None, {"match": found.group(0)[:200]} if found else {})


class NumericMatch:
    """GSM8K's scoring: the final number of the answer (after `####`, else after "answer is", else
    in `\\boxed{}`, else the last number) against the expected number (a number, or the one after
    `####` in a worked solution), within `tol=` (default 1e-6)."""

    name = "numeric"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        self.tolerance = options.number("tol", 1e-6)
        options.done()
        if self.tolerance < 0 or math.isnan(self.tolerance):
            raise ScorerError("scorer numeric: tol= must be 0 or more")

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer)) is not None:
            return skip
        expected = expected_number(case.expected)
        if expected is None:
            shown = as_text(case.expected)[:80]
            return Judgement(None, error=f"numeric: the expected answer has no number: {shown!r}")
        found = final_number(answer.text or "")
        detail = {"found": _plain(found), "expected": _plain(expected)}
        return _verdict(found is not None and abs(found - expected) <= self.tolerance, detail)


def expected_number(expected: Any) -> float | None:
    if isinstance(expected, bool):
        return None
    if isinstance(expected, int | float):
        return float(expected) if math.isfinite(expected) else None
    if isinstance(expected, str):
        return final_number(expected)
    return None


def final_number(text: str) -> float | None:
    """The number a worked answer ends on, by the first of these that is there: `#### N`, "the
    answer is N", `\\boxed{N}`, the last number in the text."""
    for marker in (_MARKED, _SAID):
        matches = list(marker.finditer(text))
        if matches:
            number = _first_number(text[matches[-1].end() : matches[-1].end() + 80])
            if number is not None:
                return number
    boxed = _BOXED.findall(text)
    if boxed:
        number = _first_number(boxed[-1])
        if number is not None:
            return number
    numbers = list(_NUMBER.finditer(text))
    return _value(numbers[-1]) if numbers else None


def _first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    return _value(found) if found else None


def _value(match: re.Match[str]) -> float:
    number = float(match.group(3).replace(",", ""))
    return -number if match.group(1) or match.group(2) else number


def _plain(number: float | None) -> float | int | None:
    """A number as a person writes it in a report: 72, not 72.0."""
    if number is not None and number.is_integer():
        return int(number)
    return number


def _verdict(passed: bool, detail: dict[str, Any] | None = None) -> Judgement:
    return Judgement(1.0 if passed else 0.0, detail or {})
