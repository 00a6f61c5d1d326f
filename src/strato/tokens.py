"""Token counts without a tokenizer, in one place: an estimate for what a model's own count is
missing from (a stream cut before its usage arrived, a routing rule's prompt length), and a bound
that is never below the real count, for holding budgets."""

from __future__ import annotations

from strato.types import EmbeddingRequest, GenerationRequest

BYTES_PER_TOKEN = 4  # the usual rule of thumb for BPE vocabularies; UTF-8 bytes keep CJK text honest
# The most tokens a chat template adds to a prompt besides the text: role markers and separators per
# message, plus the template's own (a default system prompt such as SmolLM2's, about 20 tokens).
TEMPLATE_TOKENS = 64
MESSAGE_TOKENS = 8


def approx_tokens(text: str) -> int:
    """About how many tokens `text` is: its UTF-8 bytes over BYTES_PER_TOKEN, rounded up."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def prompt_bound(request: GenerationRequest | EmbeddingRequest) -> int:
    """At least as many tokens as the prompt has for any byte-level or SentencePiece tokenizer:
    every ordinary token stands for one byte of text or more, and the template's own tokens are
    bounded per message and per prompt. Holding a budget with this can only be high, never low,
    so concurrent requests cannot overspend it (a quarter of the bytes, the old estimate, was
    below what SmolLM2 counts for any short chat: 31 tokens for "hi")."""
    if isinstance(request, EmbeddingRequest):
        return sum(len(t.encode()) + 2 for t in request.inputs)  # [CLS] and [SEP]
    if request.messages is None:
        return len((request.prompt or "").encode()) + MESSAGE_TOKENS
    text = sum(len(m.content.encode()) + len((m.name or "").encode()) for m in request.messages)
    return text + MESSAGE_TOKENS * len(request.messages) + TEMPLATE_TOKENS
