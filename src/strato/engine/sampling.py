"""Per-sequence sampling: a llama.cpp sampler chain built from the request, and log probabilities.

The chain runs in llama.cpp's C code: penalties, then the grammar (structured output), then
top-k / top-p / min-p / temperature and a seeded draw; temperature 0 means greedy. Each sequence
owns its chain, so its seed and penalty history are its own whatever else runs in the batch.
"""

from __future__ import annotations

import ctypes
import json
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from strato.errors import InvalidRequest
from strato.types import ResponseFormat, SamplingParams, TokenLogprob, TopLogprob


@dataclass(frozen=True, slots=True)
class SamplingDefaults:
    """What a model uses when a request does not say (llama.cpp's own defaults)."""

    top_k: int = 40
    min_p: float = 0.05


def grammar_for(response_format: ResponseFormat | None) -> str | None:
    """GBNF for `response_format`, or None when any text will do."""
    if response_format is None or response_format.type == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if response_format.type == "json_object" or not response_format.schema:
        return str(JSON_GBNF)
    try:
        return str(json_schema_to_gbnf(json.dumps(response_format.schema)))
    except Exception as exc:  # the converter raises plain exceptions for schemas it cannot express
        raise InvalidRequest(
            f"response_format.json_schema cannot be used for constrained output: {exc}",
            param="response_format",
        ) from None


class Sampler:
    """A llama.cpp sampler chain for one sequence. Not thread-safe; used by the engine thread."""

    def __init__(
        self,
        lib: Any,
        vocab: Any,
        n_vocab: int,
        params: SamplingParams,
        defaults: SamplingDefaults,
        grammar: str | None = None,
    ) -> None:
        self.lib = lib
        self.n_vocab = n_vocab
        penalties = bool(params.presence_penalty or params.frequency_penalty)
        # Plain greedy decoding needs no chain: the first highest logit, as llama.cpp's greedy
        # sampler picks it, without copying the vocabulary into a candidate array first.
        self.argmax = params.temperature <= 0 and grammar is None and not penalties
        self.seed = params.seed if params.seed is not None else random.randrange(2**31)
        chain_params = lib.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self.chain = lib.llama_sampler_chain_init(chain_params)

        def add(sampler: Any) -> None:
            lib.llama_sampler_chain_add(self.chain, sampler)  # the chain owns it from here

        if penalties:
            # OpenAI's penalties apply to every token generated so far: make the window cover them all.
            window = params.max_tokens or 4096
            add(
                lib.llama_sampler_init_penalties(
                    n_vocab, window, 1.0, params.frequency_penalty, params.presence_penalty
                )
            )
        if grammar is not None:
            sampler = lib.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
            if not sampler:
                self.close()
                raise InvalidRequest("the output grammar could not be compiled", param="response_format")
            add(sampler)
        if params.temperature <= 0:
            add(lib.llama_sampler_init_greedy())
            return
        top_k = defaults.top_k if params.top_k is None else params.top_k
        min_p = defaults.min_p if params.min_p is None else params.min_p
        if top_k > 0:
            add(lib.llama_sampler_init_top_k(top_k))
        if params.top_p < 1.0:
            add(lib.llama_sampler_init_top_p(params.top_p, 1))
        if min_p > 0:
            add(lib.llama_sampler_init_min_p(min_p, 1))
        add(lib.llama_sampler_init_temp(params.temperature))
        add(lib.llama_sampler_init_dist(self.seed))

    def sample(self, ctx: Any, index: int) -> int:
        """Pick the next token from the logits at batch position `index` (and remember it)."""
        if self.argmax:
            return int(np.argmax(logits_at(self.lib, ctx, index, self.n_vocab)))
        return int(self.lib.llama_sampler_sample(self.chain, ctx, index))

    def close(self) -> None:
        if self.chain:
            self.lib.llama_sampler_free(self.chain)
            self.chain = None


def logits_at(lib: Any, ctx: Any, index: int, n_vocab: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A view of the raw logits at batch position `index` (valid until the next decode)."""
    pointer = lib.llama_get_logits_ith(ctx, index)
    return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))


def token_logprob(
    logits: np.ndarray[Any, np.dtype[np.float32]], token: int, top: int, piece: Any
) -> TokenLogprob:
    """The chosen token's log probability under the model, with the `top` most likely tokens."""
    peak = float(logits.max())
    log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float64).sum()))
    alternatives: tuple[TopLogprob, ...] = ()
    if top:
        best = np.argpartition(-logits, top)[:top]
        best = best[np.argsort(-logits[best], kind="stable")]
        alternatives = tuple(_entry(piece(int(t)), float(logits[t]) - log_total) for t in best)
    chosen = _entry(piece(token), float(logits[token]) - log_total)
    return TokenLogprob(token=chosen.token, logprob=chosen.logprob, bytes=chosen.bytes, top=alternatives)


def _entry(data: bytes, logprob: float) -> TopLogprob:
    return TopLogprob(token=data.decode("utf-8", errors="replace"), logprob=logprob, bytes=tuple(data))
