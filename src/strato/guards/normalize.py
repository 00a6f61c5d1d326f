"""Undo the tricks that hide identifiers from regular expressions, keeping a map back to the original.

Zero-width characters are dropped; full-width, mathematical and other Unicode digits and full-width
punctuation become ASCII (NFKC, then any decimal digit to its ASCII value). Cyrillic, Greek and
other letters that look like Latin ones ("pаssword" with a Cyrillic a) become those Latin letters,
but only in a word that mixes them with Latin letters or is made of look-alikes alone: a word
genuinely written in Russian or Greek keeps its letters. Every step maps one character to one (or
drops it), so spans found in the normalised text map back to spans in the text the caller sent.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Characters that render as nothing but split a token for a naive matcher.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f")


# Letters of other scripts that render like a Latin letter (Unicode's confusables, the ones used to
# dodge filters). Full-width and mathematical Latin letters are already folded by NFKC.
LOOKALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
    "ј": "j", "ѕ": "s", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ь": "b", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Һ": "H", "Ԛ": "Q", "Ԝ": "W",
    "Ӏ": "I", "Ү": "Y",
    # Greek
    "ο": "o", "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ω": "w",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian, Latin IPA and dotless letters
    "օ": "o", "ս": "u", "ց": "g", "ɑ": "a", "ɡ": "g", "ı": "i", "ȷ": "j", "ʏ": "y",
}  # fmt: skip
_FOLD = str.maketrans(LOOKALIKES)
_LOOKALIKE_CHARS = frozenset(LOOKALIKES)
# A word (letters only) with at least one look-alike in it, matched whole.
_WORD_WITH_LOOKALIKE = re.compile(rf"(?<![^\W\d_])[^\W\d_]*[{''.join(LOOKALIKES)}][^\W\d_]*")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


@dataclass(frozen=True)
class Normalized:
    text: str
    origin: list[int]  # origin[i]: index in the original text of normalised character i
    original_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of normalised characters [start, end)."""
        if start >= len(self.origin):
            return self.original_length, self.original_length
        return self.origin[start], self.origin[end - 1] + 1


def normalize(text: str) -> Normalized:
    if text.isascii():  # the common case: nothing to undo
        return Normalized(text, list(range(len(text))), len(text))
    parts: list[str] = []
    origin: list[int] = []
    last = 0
    for match in _NON_ASCII.finditer(text):  # ASCII runs are copied whole
        index = match.start()
        parts.append(text[last:index])
        origin.extend(range(last, index))
        last = index + 1
        char = match.group(0)
        if char in INVISIBLE or unicodedata.category(char) == "Cf":
            continue
        for piece in _ascii_view(char):
            parts.append(piece)
            origin.append(index)
    parts.append(text[last:])
    origin.extend(range(last, len(text)))
    return Normalized(_fold_lookalikes("".join(parts)), origin, len(text))


def _fold_lookalikes(text: str) -> str:
    """`text` with the look-alike letters of each disguised word replaced by Latin ones (one
    character for one). Runs after invisible characters are gone, so "р\u200bаy" is one word."""
    if _LOOKALIKE_CHARS.isdisjoint(text):
        return text
    return _WORD_WITH_LOOKALIKE.sub(_fold_word, text)


def _fold_word(match: re.Match[str]) -> str:
    word = match.group(0)
    return word.translate(_FOLD) if _disguised(word) else word


def _disguised(word: str) -> bool:
    """Whether a word's look-alike letters stand in for Latin ones: it mixes them with ASCII letters
    ("pаypal"), or consists of look-alikes alone ("ѕех"). A word with any other letter of its script
    ("привет", "καλημέρα") is real Russian or Greek."""
    return all(char.isascii() or char in LOOKALIKES for char in word)


def _ascii_view(char: str) -> str:
    if char.isascii():
        return char
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    folded = unicodedata.normalize("NFKC", char)
    # Keep a character whose compatibility form is not one plain ASCII character (accents, ligatures):
    # changing the length would only matter for identifiers, which are ASCII.
    if len(folded) == 1 and folded.isascii():
        return folded
    if char in "\u2010\u2011\u2012\u2013\u2014\u2212":  # dashes that stand in for '-'
        return "-"
    return char


# Three or more single characters with one space between each: "j o h n @ e x a m p l e . c o m",
# "4 1 1 1". The lookahead first: most text fails it at once.
_SPACED_RUN = re.compile(r"(?=\S \S \S)(?<!\S)\S(?: \S){2,}(?!\S)")
_CALCULATION = frozenset("=*×÷<>")  # "3 * 4 = 12" is arithmetic spaced out, not a word


def closed_up(text: str) -> Normalized | None:
    """`text` with each spaced-out word closed up ("j o h n @ e x a m p l e . c o m" becomes
    "john@example.com"), mapped back to `text`; None when there is none. A spaced-out word is a run
    of single characters with one space between each, at least three of them letters or digits, and
    no sign of a calculation. Not part of `normalize`: closing up "U S A" changes words for a reader
    of prose, so only a caller that checks what the closed-up text forms (an identifier's shape, a
    checksum) uses it."""
    parts: list[str] = []
    origin: list[int] = []
    last = 0
    for match in _SPACED_RUN.finditer(text):
        run = match.group(0)
        if sum(c.isalnum() for c in run) < 3 or not _CALCULATION.isdisjoint(run):
            continue
        start, end = match.span()
        parts.append(text[last:start])
        origin.extend(range(last, start))
        parts.append(run[::2])  # the characters, not the spaces between them
        origin.extend(range(start, end, 2))
        last = end
    if not parts:
        return None
    parts.append(text[last:])
    origin.extend(range(last, len(text)))
    return Normalized("".join(parts), origin, len(text))
