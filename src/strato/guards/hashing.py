"""The injection classifier's features without scikit-learn or scipy: the n-grams and hashes of the
two HashingVectorizers it was trained with (word 1-2-grams with scikit-learn's token pattern,
`char_wb` 3-5-grams; MurmurHash3, seed 0, absolute value modulo the width). A gateway install then
needs neither library; training (`InjectionModel.fit`) still uses them.
tests/guards/test_hashing.py checks these against scikit-learn's own."""

from __future__ import annotations

import re
from itertools import pairwise

import mmh3

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
CHAR_RANGE = (3, 5)


def word_ngrams(text: str) -> list[str]:
    """The tokens, then each pair of adjacent tokens joined by a space."""
    tokens = TOKEN.findall(text)
    return tokens + [f"{a} {b}" for a, b in pairwise(tokens)]


def char_wb_ngrams(text: str, low: int = CHAR_RANGE[0], high: int = CHAR_RANGE[1]) -> list[str]:
    """Character n-grams inside each word padded with a space on both sides; a word shorter than
    an n counts once, whole."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if len(padded) <= n:
                grams.append(padded)
                break
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def hashed(grams: list[str], width: int, offset: int = 0) -> list[int]:
    """Each n-gram's column: `offset` + |MurmurHash3_32(utf-8, seed 0)| mod `width`."""
    return [offset + abs(mmh3.hash(gram, 0, signed=True)) % width for gram in grams]
