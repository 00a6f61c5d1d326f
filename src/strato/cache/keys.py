"""Cache keys: a hash of everything that shapes an answer, so two requests share a key only when a
model would be asked exactly the same thing.

In a key: the model name as requested (a model group, not the deployment that happens to answer),
the endpoint, every message (role, name, content) or the prompt, every sampling parameter (seed,
stop, max_tokens, logprobs, response_format, ...) and the fields passed through to upstreams
(`tools`, ...). Not in a key: `user`, which names the end user for abuse tracking and does not
change the answer; the tenant is the scope, kept beside the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from strato.types import GenerationRequest, Message

KEY_VERSION = 1  # bump when what goes into a key changes, so old entries are simply never found


def exact_key(request: GenerationRequest) -> str:
    """The key of this exact request."""
    if request.messages is not None:
        return _digest(_shape(request, "exact", messages=request.messages))
    return _digest(_shape(request, "exact", prompt=request.prompt))


def last_user_turn(request: GenerationRequest) -> str | None:
    """The text a semantic lookup compares: the last message, when it is the user's (else None)."""
    if not request.messages or request.messages[-1].role != "user":
        return None
    return request.messages[-1].content


def bucket_key(request: GenerationRequest, embedder: str) -> str:
    """The key of everything but the last user turn: semantic matches stay within one bucket.

    The embedding model is part of it, as vectors of two models cannot be compared."""
    assert request.messages is not None
    return _digest(_shape(request, "semantic", messages=request.messages[:-1], embedder=embedder))


def scope_id(scope: str) -> str:
    """A short stable name for a scope, for storage keys (a scope may be a secret)."""
    return hashlib.sha256(scope.encode()).hexdigest()[:24]


def _shape(request: GenerationRequest, kind: str, **parts: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "v": KEY_VERSION,
        "kind": kind,
        "model": request.model,
        "endpoint": str(request.endpoint),
        "params": dataclasses.asdict(request.params),
        "passthrough": request.passthrough,
    }
    for name, value in parts.items():
        shape[name] = [_message(m) for m in value] if name == "messages" else value
    return shape


def _message(message: Message) -> list[str | None]:
    return [message.role, message.name, message.content]


def _digest(shape: dict[str, Any]) -> str:
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()
