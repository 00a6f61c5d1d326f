"""The injection classifier's features without scikit-learn or scipy: the n-grams and hashes of the
two HashingVectorizers it was trained with (word 1-2-grams with scikit-learn's token pattern,
`char_wb` 3-5-grams; MurmurHash3, seed 0, absolute value modulo the width). A gateway install then
needs neither library; training (`InjectionModel.fit`) still uses them.
tests/guards/test_hashing.py checks these against scikit-learn's own.

`columns` is what inference reads: the same columns, with each word's and token's hashes
remembered (a text is mostly words seen before, so a scan hashes a few n-grams, not thousands)."""

from __future__ import annotations

import re
from functools import lru_cache
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
    """Each n-gram's column (`offset_hash`)."""
    return [offset_hash(gram, width, offset) for gram in grams]


WORDS_REMEMBERED = 65_536  # distinct words (and tokens) whose columns are kept: a few MB at most


def columns(text: str, width: int) -> list[int]:
    """The columns of `text`'s word n-grams (`0..width`) then of its character n-grams
    (`width..2*width`), in the order `hashed(word_ngrams) + hashed(char_wb_ngrams, offset=width)`
    gives them."""
    tokens = TOKEN.findall(text)
    found = [_column(token, width) for token in tokens]
    found.extend(offset_hash(f"{a} {b}", width) for a, b in pairwise(tokens))
    for word in text.split():
        found.extend(_word_columns(word, width))
    return found


def offset_hash(gram: str, width: int, offset: int = 0) -> int:
    """One n-gram's column: `offset` + |MurmurHash3_32(utf-8, seed 0)| mod `width`."""
    return offset + abs(mmh3.hash(gram, 0, signed=True)) % width


@lru_cache(maxsize=WORDS_REMEMBERED)
def _column(token: str, width: int) -> int:
    return offset_hash(token, width)


@lru_cache(maxsize=WORDS_REMEMBERED)
def _word_columns(word: str, width: int) -> tuple[int, ...]:
    return tuple(hashed(char_wb_ngrams(word), width, width))
