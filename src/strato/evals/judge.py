"""LLM-as-judge: another model rates the answer by a rubric, and its verdict is read from its text.

The judge's raw output is always kept in the judgement's detail. A judge that says no readable score,
or whose call fails, gives a judgement without a value and with an error that says so: never a
made-up number, never NaN.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from strato.errors import first_line
from strato.evals.scorers import Options, ScorerError, as_text, unanswered
from strato.evals.types import Answer, Case, Judgement, Target

DEFAULT_RUBRIC = (
    "You are an impartial judge of the answer an AI assistant gave to a user's question. Judge how "
    "correct and helpful it is: whether it answers what was asked, is accurate, relevant and "
    "complete, and is clear. When a reference answer is given, check the assistant's answer against "
    "it first: a wrong final answer is a poor answer however well it is written. Start with a short "
    "explanation, be as objective as possible, and do not let the answer's length sway you."
)

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_BRACKETED = re.compile(r"\[\[\s*" + _NUMBER + r"\s*\]\]")  # MT-Bench: "Rating: [[8]]"
_JSON_KEY = re.compile(r"[\"'](?:score|rating)[\"']\s*:\s*\"?" + _NUMBER, re.IGNORECASE)
_LABELLED = re.compile(r"\b(?:score|rating)\b\**\s*(?:is|[:=])\s*\**\s*" + _NUMBER, re.IGNORECASE)
_BARE = re.compile(r"\s*" + _NUMBER + r"\s*\.?\s*")
_SCALE = re.compile(r"\s*" + _NUMBER + r"\s*(?:-|to|\.\.)\s*" + _NUMBER + r"\s*")


class LLMJudge:
    """`judge:model=M[,rubric=TEXT|FILE][,scale=1-10][,max_tokens=512][,temperature=0]`: asks model
    M to rate the answer (given the question and, when the case has one, the reference answer) and
    reads "Rating: [[N]]", a JSON {"score": N} or "Score: N" from its reply, normalised to 0..1 over
    the scale."""

    name = "judge"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        self.model = options.required("model", "the model that judges, e.g. judge:model=gpt-4o")
        self.rubric = _rubric(options.text("rubric"))
        self.low, self.high = _scale(options.text("scale", "1-10") or "1-10")
        max_tokens = options.number("max_tokens", 512)
        temperature = options.number("temperature", 0.0)
        options.done()
        if max_tokens < 1 or not max_tokens.is_integer():
            raise ScorerError("scorer judge: max_tokens= must be a whole number of 1 or more")
        if not 0 <= temperature <= 2:
            raise ScorerError("scorer judge: temperature= must be between 0 and 2")
        self.params = {"temperature": temperature, "max_tokens": int(max_tokens)}
        self.target = target

    def messages(self, case: Case, answer_text: str) -> list[dict[str, str]]:
        """What the judge is sent: the rubric, then the question, the reference and the answer."""
        parts = [f"[Question]\n{question_text(case.input)}"]
        if case.expected is not None:
            parts.append(f"[Reference answer]\n{as_text(case.expected)}")
        parts.append(f"[The assistant's answer]\n{answer_text}")
        low, high = _plain(self.low), _plain(self.high)
        parts.append(
            f"Rate the assistant's answer from {low} to {high}. End your reply with the rating on a "
            f'line of its own in exactly this form: "Rating: [[N]]", for example "Rating: [[{high}]]".'
        )
        return [{"role": "system", "content": self.rubric}, {"role": "user", "content": "\n\n".join(parts)}]

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer, needs_expected=False)) is not None:
            return skip
        request = {"messages": self.messages(case, answer.text or ""), "params": dict(self.params)}
        detail: dict[str, Any] = {"model": self.model, "raw": None}
        try:
            verdict = await self.target.complete(self.model, request)
        except Exception as exc:  # the target should not raise; if it does, the case still gets a judgement
            return Judgement(None, detail, f"judge call failed: {first_line(exc)}")
        detail.update(latency_ms=verdict.latency_ms, cost=verdict.cost)
        if verdict.error is not None or verdict.text is None:
            return Judgement(None, detail, f"judge call failed: {verdict.error or 'no text returned'}")
        raw = verdict.text
        detail["raw"] = raw
        score = parse_score(raw)
        if score is None:
            return Judgement(None, detail, f"judge output has no score: {raw.strip()[:80]!r}")
        detail["score"] = _plain(score)
        if not self.low <= score <= self.high:
            scale = f"{_plain(self.low)}-{_plain(self.high)}"
            return Judgement(None, detail, f"judge score {_plain(score)} is outside the scale {scale}")
        return Judgement((score - self.low) / (self.high - self.low), detail)


def parse_score(text: str) -> float | None:
    """The rating a judge gave, by the first form found: `[[N]]` (the last one), a JSON object's
    "score" or "rating", "Score: N" / "Rating: N" (the last one), a bare number. None when there
    is none."""
    for pattern in (_BRACKETED, _JSON_KEY, _LABELLED):
        found = pattern.findall(text)
        if found:
            value = float(found[-1])
            return value if math.isfinite(value) else None
    bare = _BARE.fullmatch(text)
    if bare is not None:  # a judge that answers with the number alone
        value = float(bare.group(1))
        return value if math.isfinite(value) else None
    return None


def question_text(case_input: dict[str, Any]) -> str:
    """The question as a judge reads it: the prompt, the only message, or the conversation."""
    if "prompt" in case_input:
        return str(case_input["prompt"])
    messages = case_input.get("messages") or []
    if len(messages) == 1:
        return str(messages[0].get("content", ""))
    return "\n\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages)


def _rubric(given: str | None) -> str:
    """`rubric=` as text, or the contents of the file it names."""
    if not given:
        return DEFAULT_RUBRIC
    if len(given) < 1024 and "\n" not in given:
        path = Path(given).expanduser()
        if path.suffix and path.is_file():
            try:
                return path.read_text(encoding="utf-8").strip() or DEFAULT_RUBRIC
            except OSError as exc:
                raise ScorerError(f"scorer judge: cannot read {path}: {exc.strerror or exc}") from None
    return given


def _scale(text: str) -> tuple[float, float]:
    found = _SCALE.fullmatch(text)
    if found is None:
        raise ScorerError(f"scorer judge: scale={text!r}: use LOW-HIGH, e.g. 1-10 or 0-5")
    low, high = float(found.group(1)), float(found.group(2))
    if high <= low:
        raise ScorerError(f"scorer judge: scale={text!r}: the top must be above the bottom")
    return low, high


def _plain(number: float) -> float | int:
    return int(number) if number.is_integer() else number
