"""Checks on a model's answer: content anomalies, and the output guard applying them with profanity
(`strato.guards.profanity`).

`content_anomalies` finds an empty answer, one character or one word repeated, a model stuck in a
loop (runaway repetition at the end of the answer) and invalid JSON when JSON was asked for. It is
pure and takes tens of microseconds on a typical answer, so the observability layer can run it on
every response.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import re
import string
import unicodedata
from typing import TYPE_CHECKING

from strato.config import GuardsSettings
from strato.guards.profanity import profanity
from strato.guards.verdict import REWRITING, Action, Direction, Finding, ScanContext, Verdict, strictest

if TYPE_CHECKING:
    from strato.providers.registry import ModelTable

# ---------------------------------------------------------------------------------------------------
# Content anomalies

_ASCII_BLANK = string.whitespace + string.punctuation
_FENCE = re.compile(r"\A\s*```[\w+-]*[ \t]*\n(.*?)\n?[ \t]*```\s*\Z", re.DOTALL)
_WORD = re.compile(r"\w+")
_CHUNK = re.compile(r"\S+")
_DIGIT = re.compile(r"[1-9]")
_VALUES = frozenset({"none", "null", "nil", "true", "false", "nan"})  # data, like numbers

MIN_CHARACTER_RUN = 64  # one letter or space this many times at the end ("\n" * 64)
MIN_MARK_RUN = 128  # ASCII punctuation: "-" * 80 is a rule line, not a fault
MIN_WORD_RUN = 10  # one word this many times in a row ("the the the ...")
MIN_VALUE_RUN = 64  # numbers, one letter, None, true: "0, 0, 0, ..." fills matrices in code
MIN_WHOLE_WORD_RUN = 5  # an answer that is nothing but one word this many times
NEEDLE = 12  # characters at the end of the answer looked for earlier to find a loop's period
MAX_PERIOD = 2000  # characters in one turn of a loop: a long paragraph
MAX_CANDIDATES = 4  # earlier occurrences of the needle tried as the period
MIN_LOOP_CHARACTERS = 100  # a loop covers at least this much of the end of the answer
MIN_NUMBERED_TURNS = 8  # a loop in which only numbers change ("Step 7: ...", "Step 8: ...")


def content_anomalies(text: str, json_expected: bool = False) -> list[Finding]:
    """Anomalies in a model's answer, each with its span in `text` and a score in 0..1.

    The last few answers' findings are kept: the output guard and the anomaly watch
    (`strato.observe.anomalies`) both judge each answer, and the second asks for free.

    EMPTY_ANSWER: nothing but whitespace and punctuation (a valid JSON document such as `{}` is not
    empty when JSON was asked for). REPEATED_CHARACTER: the answer is one character repeated, or
    ends with one repeated 64 times or more (128 for punctuation). REPEATED_TOKEN: one word ten times
    in a row (64 for a number, a single letter or None/true/false), or an answer that is one word
    five times or more. RUNAWAY_REPETITION: the answer ends with a phrase, line or paragraph repeated
    (3 to 8 times, fewer for longer ones), as a model stuck in a loop does until its token limit;
    the span covers the whole repeated part. INVALID_JSON (only with `json_expected`): the answer,
    without a ``` fence, is not a JSON document.
    """
    return list(_content_anomalies(text, json_expected))


@functools.lru_cache(maxsize=16)
def _content_anomalies(text: str, json_expected: bool) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    valid_json = json_expected and _is_json(text)
    empty = _is_empty(text) and not valid_json
    if empty:
        findings.append(Finding("EMPTY_ANSWER", 0, len(text), 1.0, text))
    repeated = _repeated_character(text)
    if repeated is not None:
        findings.append(repeated)
    if not empty and (repeated is None or repeated.start > 0):
        findings.extend(_repetition(text))
    if json_expected and not valid_json:
        findings.append(Finding("INVALID_JSON", 0, len(text), 1.0, text))
    return tuple(sorted(findings, key=lambda f: (f.start, f.end)))


def repetition_at_end(text: str) -> tuple[str, int] | None:
    """(type, start) of the repetition `text` ends in, judged as `content_anomalies` judges the end
    of an answer: REPEATED_CHARACTER (one character run), REPEATED_TOKEN (one word looping) or
    RUNAWAY_REPETITION; None when it ends in none. Loops in which only numbers change are not
    included. `text` is expected lowercased, as `content_anomalies` lowercases before it looks for
    loops. The local engine runs this on the tail of every answer it generates
    (`strato.engine.repetition`), so it looks only at the end: microseconds, whatever the length."""
    run = _character_run_at_end(text)
    if run is not None:
        return run.type, run.start
    loop = _loop_at_end(text.rstrip())
    return (loop[0], loop[1]) if loop is not None else None


def _is_empty(text: str) -> bool:
    rest = text.strip(_ASCII_BLANK)
    if rest.isascii():
        return not rest
    # Punctuation, separators and invisible characters of any script ("…", "。", zero-width space).
    return all(unicodedata.category(char)[0] in "PZC" for char in rest)


def _repeated_character(text: str) -> Finding | None:
    body = text.strip() or text
    if body and len(set(body[:64])) <= 4:  # cheap test first: a real answer uses more characters than this
        visible = body if body.isspace() else "".join(body.split())
        char, count = collections.Counter(visible).most_common(1)[0]
        share = count / len(visible)
        shortest = 8 if char.isalnum() else 4  # "1111" may be an answer, "!!!!" is not
        if share >= 0.9 and len(visible) >= shortest:
            return Finding("REPEATED_CHARACTER", 0, len(text), share, text)
    return _character_run_at_end(text)


def _character_run_at_end(text: str) -> Finding | None:
    body = text.rstrip()
    end = len(text)
    run = end - len(body)  # trailing whitespace, "\n" and " " mixed
    if run < MIN_CHARACTER_RUN:
        if not body:
            return None
        end = len(body)
        run = end - len(body.rstrip(body[-1]))
        shortest = MIN_MARK_RUN if body[-1] in string.punctuation else MIN_CHARACTER_RUN
        if run < shortest:
            return None
    score = min(1.0, 0.5 + run / (4 * MIN_CHARACTER_RUN))
    return Finding("REPEATED_CHARACTER", end - run, end, score, text[end - run : end])


def _repetition(text: str) -> list[Finding]:
    lowered = text.lower()
    if len(lowered) != len(text):  # a few letters lower to two characters: keep spans exact
        lowered = text
    findings: list[Finding] = []
    run = _word_run(lowered.split())
    if run is not None:
        first, count = run
        start, end = _chunk_span(lowered, first, first + count)
        findings.append(Finding("REPEATED_TOKEN", start, end, min(1.0, 0.5 + count / 40), text[start:end]))
    body = lowered.rstrip()
    if findings and findings[-1].end == len(body):
        return findings  # the loop at the end is that word
    loop = _loop_at_end(body)
    if loop is None and _DIGIT.search(body) is not None:
        loop = _loop_at_end(_DIGIT.sub("0", body), numbered=True)  # same length: spans still fit
    if loop is not None:
        kind, start, turns = loop
        score = min(1.0, 0.4 + turns / 20 + (len(body) - start) / len(body) / 2)
        findings.append(Finding(kind, start, len(body), score, text[start : len(body)]))
    return findings


def _word_run(chunks: list[str]) -> tuple[int, int] | None:
    """(index of the first, count) of the longest run of one whitespace-separated word, when it is
    anomalous. The word keeps its punctuation, so "r'=', r'+='" is not "r" repeated."""
    best_end, best, count = 0, 1, 1
    for i in range(1, len(chunks)):
        if chunks[i] == chunks[i - 1]:
            count += 1
            if count > best:
                best_end, best = i, count
        else:
            count = 1
    if best == 1:
        return None
    word = chunks[best_end].strip(string.punctuation)
    if not word:
        return None  # "* * *", "| | |"
    whole = best == len(chunks) and best >= MIN_WHOLE_WORD_RUN
    return (best_end - best + 1, best) if whole or best >= _shortest_run(word) else None


def _shortest_run(word: str) -> int:
    value = len(word) == 1 or word in _VALUES or not any(c.isalpha() for c in word)
    return MIN_VALUE_RUN if value else MIN_WORD_RUN


def _chunk_span(text: str, first: int, stop: int) -> tuple[int, int]:
    """The span of whitespace-separated words [first, stop) of `text`."""
    start = 0
    for index, match in enumerate(_CHUNK.finditer(text)):
        if index == first:
            start = match.start()
        if index == stop - 1:
            return start, match.end()
    return start, len(text)


def _loop_at_end(text: str, numbered: bool = False) -> tuple[str, int, float] | None:
    """(type, start, turns) of a repetition that runs to the end of `text`, if it is anomalous.

    The last characters of the text are looked for earlier in it: the distance is the candidate
    period, and the repeated part is where the text equals itself shifted by the period (a binary
    search over slice comparisons, so it is fast). The last turn may be cut anywhere."""
    n = len(text)
    if n < MIN_LOOP_CHARACTERS:
        return None
    needle = text[-NEEDLE:]
    end = n - 1
    for _ in range(MAX_CANDIDATES):
        found = text.rfind(needle, max(0, n - NEEDLE - MAX_PERIOD), end)
        if found < 0:
            return None
        period = n - NEEDLE - found
        start = _periodic_from(text, period)
        if n - start >= 2 * period:
            return _judged(text, start, period, numbered)
        end = found + NEEDLE - 1
    return None


def _periodic_from(text: str, period: int) -> int:
    """The smallest start such that text[start:] equals itself shifted by `period`."""
    n = len(text)
    low, high = 0, n - period
    while low < high:
        middle = (low + high) // 2
        if text[middle : n - period] == text[middle + period : n]:
            high = middle
        else:
            low = middle + 1
    return low


def _judged(text: str, start: int, period: int, numbered: bool) -> tuple[str, int, float] | None:
    """Whether the repeated part is a loop: long enough, and of words (not a rule line or a row of
    numbers). One word repeated is REPEATED_TOKEN ("hahaha", "the the the")."""
    length = len(text) - start
    turns = length / period
    words = _WORD.findall(text[-period:])
    if period == 1 or length < MIN_LOOP_CHARACTERS:
        return None
    count = sum(len(w) if unicodedata.east_asian_width(w[0]) in "WF" else 1 for w in words)
    letters = sum(1 for w in words if w.isalpha())
    if count == 1 and not numbered:  # (numbered, it is counting: "1 2 3 ...")
        long_enough = turns >= _shortest_run(words[0])
        return ("REPEATED_TOKEN", _word_start(text, start), turns) if long_enough else None
    if count <= 1 or letters == 0 or (numbered and 2 * letters <= count):
        return None  # punctuation, numbers, or a table whose rows differ in their numbers
    fewest = 8 if period < 20 else 4 if period < 100 else 3
    # 0.1: the whitespace the answer ends with is not counted, and the last turn may be cut short.
    if turns + 0.1 < max(fewest, MIN_NUMBERED_TURNS if numbered else 0):
        return None
    return "RUNAWAY_REPETITION", _word_start(text, start), turns


def _word_start(text: str, start: int) -> int:
    """Move a span's start out of the middle of a (Latin) word and past the punctuation before a word.
    Han has no spaces: there the start stays where the repetition starts."""
    while 0 < start < len(text) and (pair := text[start - 1 : start + 1]).isascii() and pair.isalnum():
        start += 1
    while start < len(text) and not text[start].isalnum():
        start += 1
    return start


def _is_json(text: str) -> bool:
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        json.loads(body, parse_constant=_not_json)  # NaN and Infinity are Python's, not JSON's
    except (ValueError, RecursionError):
        return False
    return True


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not JSON")


# ---------------------------------------------------------------------------------------------------
# The guard


class OutputGuard:
    """The `Guard` on the model's answer: content anomalies and profanity, each with its action from
    `output` settings (`allow` turns a check off). An anomaly cannot be redacted (there is nothing to
    cut out of an empty or looping answer), so `redact` flags it; redacted profanity becomes asterisks
    of the same length."""

    name = "output"
    directions: tuple[Direction, ...] = ("output",)
    order = 50

    @classmethod
    def build(cls, settings: GuardsSettings, models: ModelTable | None) -> OutputGuard:
        return cls(settings)

    def rewrites(self, settings: GuardsSettings) -> bool:
        return any(a in REWRITING for a in (settings.output.anomalies, settings.output.profanity))

    def runs(self, settings: GuardsSettings, direction: Direction) -> bool:
        return direction == "output" and any(
            a != "allow" for a in (settings.output.anomalies, settings.output.profanity)
        )

    def __init__(self, settings: GuardsSettings | None = None) -> None:
        self.settings = settings if settings is not None else GuardsSettings()

    async def scan(self, text: str, context: ScanContext) -> Verdict:
        return self.scan_now(text, context)

    def scan_now(self, text: str, context: ScanContext) -> Verdict:
        """`scan` without the coroutine: the work is CPU-bound and takes well under a millisecond."""
        settings = context.settings if context.settings is not None else self.settings.resolved(context.model)
        rules = settings.output
        findings: list[Finding] = []
        if rules.anomalies != "allow":
            action: Action = "flag" if rules.anomalies == "redact" else rules.anomalies
            findings += _with_action(content_anomalies(text, context.json_expected), action)
        if rules.profanity != "allow":
            findings += _with_action(profanity(text), rules.profanity)
        action = strictest([f.action for f in findings])
        if action == "redact":
            text = _starred(text, [f for f in findings if f.action == "redact"])
        return Verdict(action, text, sorted(findings, key=lambda f: f.start), self.name)


def _with_action(findings: list[Finding], action: Action) -> list[Finding]:
    return [dataclasses.replace(f, action=action) for f in findings]


def _starred(text: str, findings: list[Finding]) -> str:
    pieces: list[str] = []
    last = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < last:
            continue
        pieces += [text[last : finding.start], "*" * (finding.end - finding.start)]
        last = finding.end
    pieces.append(text[last:])
    return "".join(pieces)
