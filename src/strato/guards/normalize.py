"""Undo the tricks that hide identifiers from regular expressions, keeping a map back to the original.

Zero-width characters are dropped; full-width, mathematical and other Unicode digits and full-width
punctuation become ASCII (NFKC, then any decimal digit to its ASCII value). Spans found in the
normalised text are mapped back to spans in the text the caller sent.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Characters that render as nothing but split a token for a naive matcher.
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f")


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
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char in INVISIBLE or unicodedata.category(char) == "Cf":
            continue
        for piece in _ascii_view(char):
            out.append(piece)
            origin.append(index)
    return Normalized("".join(out), origin, len(text))


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
