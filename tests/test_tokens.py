"""Token estimates without a tokenizer: about a token per 4 UTF-8 bytes, rounded up (the bound
that is never low is tested against the real tokenizer in tests/auth/test_authority.py)."""

from __future__ import annotations

import pytest

from strato.tokens import approx_tokens


@pytest.mark.parametrize(
    ("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("日本語", 3), ("hello world!", 3)]
)
def test_about_a_token_per_four_bytes(text: str, tokens: int) -> None:
    assert approx_tokens(text) == tokens
