"""How answers and vectors are stored: compact JSON for a `Generation`, raw float32 for a vector."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from strato.cache import Vector
from strato.types import Generation, TokenLogprob, TopLogprob, Usage


def encode_answer(answer: Generation) -> str:
    body: dict[str, Any] = {
        "text": answer.text,
        "finish_reason": answer.finish_reason,
        "usage": [answer.usage.prompt_tokens, answer.usage.completion_tokens],
    }
    if answer.logprobs is not None:
        body["logprobs"] = [
            [t.token, t.logprob, list(t.bytes), [[a.token, a.logprob, list(a.bytes)] for a in t.top]]
            for t in answer.logprobs
        ]
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode_answer(text: str | bytes) -> Generation:
    body = json.loads(text)
    logprobs = None
    if "logprobs" in body:
        logprobs = tuple(
            TokenLogprob(token, logprob, tuple(raw), tuple(TopLogprob(a, lp, tuple(b)) for a, lp, b in top))
            for token, logprob, raw, top in body["logprobs"]
        )
    prompt_tokens, completion_tokens = body["usage"]
    return Generation(
        text=body["text"],
        finish_reason=body["finish_reason"],
        usage=Usage(prompt_tokens, completion_tokens),
        logprobs=logprobs,
    )


def unit_vector(values: list[float]) -> Vector:
    """A float32 vector scaled to length 1, so that a dot product is the cosine."""
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def vector_bytes(vector: Vector) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(raw: bytes) -> Vector:
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)
