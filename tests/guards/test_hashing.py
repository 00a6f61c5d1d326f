"""The injection classifier's features computed without scikit-learn are scikit-learn's own: the
same n-grams and, hashed, the same columns with the same counts."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import HashingVectorizer

from strato.guards.hashing import char_wb_ngrams, columns, hashed, word_ngrams
from strato.guards.injection import N_FEATURES, _hashers, hashed_counts

WORDS, CHARS = (h.build_analyzer() for h in _hashers())
# Words, spaces of every kind, accents, scripts without spaces, emoji and punctuation.
texts = st.text(
    st.sampled_from([*"ab ignore système\t\n  日本語ü✓!?.'-_0123", "\u00a0", "\u2003", "\U0001f600"]),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_the_ngrams_are_scikit_learn_s(text: str) -> None:
    assert Counter(word_ngrams(text)) == Counter(WORDS(text))
    assert Counter(char_wb_ngrams(text)) == Counter(CHARS(text))


@settings(max_examples=200, deadline=None)
@given(texts)
def test_the_hashed_columns_and_counts_are_scikit_learn_s(text: str) -> None:
    ours = Counter(
        hashed(word_ngrams(text), N_FEATURES) + hashed(char_wb_ngrams(text), N_FEATURES, N_FEATURES)
    )
    row = hashed_counts([text])
    theirs = {int(c): int(v) for c, v in zip(row.indices, row.data, strict=True)}
    assert dict(ours) == theirs


def test_the_vectorizers_are_the_ones_trained_with() -> None:
    words, chars = _hashers()
    assert isinstance(words, HashingVectorizer) and words.ngram_range == (1, 2) and not words.lowercase
    assert chars.analyzer == "char_wb" and chars.ngram_range == (3, 5) and chars.n_features == N_FEATURES


@settings(max_examples=200, deadline=None)
@given(texts)
def test_the_remembered_columns_are_the_hashed_ones(text: str) -> None:
    """`columns` (what inference reads, with each word's hashes remembered) gives the same columns
    in the same order, the first time a word is seen and every time after."""
    expected = hashed(word_ngrams(text), N_FEATURES) + hashed(char_wb_ngrams(text), N_FEATURES, N_FEATURES)
    assert columns(text, N_FEATURES) == expected
    assert columns(text, N_FEATURES) == expected
