"""Prompt-lookup decoding: guess the next tokens from what the sequence already holds.

Answers often repeat their input: code edits, extraction, quoting a document, reformatting. When
the last few tokens of a sequence occurred earlier in its prompt or its answer, the tokens that
followed them then are a cheap guess (a draft) for what follows now. The engine evaluates the
draft in the same step as the sequence's next token and samples every position in order; each
sampled token that matches the draft saves a whole step. A mismatch costs only the extra
positions in that one step, and the sampled token is kept, so the output is the one plain
decoding would give, and sampled requests draw from the same distribution with the same seed.

Drafts are not free: on a CPU each extra token in a step costs a good part of a one-token step
(about 0.37 of it for SmolLM2 on two cores). The draft length therefore follows the odds: each
request keeps a running estimate `p` of how often its drafted tokens are accepted, and drafts the
k tokens for which `p**k` (the chance the k-th one is still accepted) stays above the cost ratio
the engine measures. A request whose drafts keep missing stops drafting, and tries one token
every `probe_every` steps, to notice when it starts copying again; one that copies drafts long
runs.

No draft model is needed; the cost is a dictionary of recent n-grams per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LookupOptions:
    """When and how far the engine drafts ahead. `max_draft` 0 turns lookup off."""

    max_draft: int = 0  # most tokens drafted per step for one sequence
    ngram: int = 3  # longest suffix looked up; shorter ones (down to `min_ngram`) are tried next
    min_ngram: int = 2
    max_streams: int = 1  # draft only while at most this many sequences are generating
    memory: float = 0.8  # how much of its acceptance record a request keeps at each draft
    probe_every: int = 8  # steps without a draft after which a request whose drafts missed tries one
    cost: float = 0.4  # a drafted token's share of a step's cost until the engine has measured it

    @property
    def enabled(self) -> bool:
        return self.max_draft > 0


class Lookup:
    """The n-gram index of one sequence (prompt, then generated tokens), kept as tokens arrive."""

    def __init__(self, options: LookupOptions, tokens: list[int]) -> None:
        self.options = options
        self.tokens: list[int] = []
        self._seen: dict[tuple[int, ...], int] = {}  # n-gram -> where the token after it sits
        self._match: dict[int, int] = {}  # suffix length -> where its earlier occurrence ended
        self.hits = 0.0  # drafted tokens accepted, and drafts cut short by a miss (decayed)
        self.misses = 0.0
        self.idle = 0  # steps since the last draft
        for token in tokens:
            self.append(token)

    def append(self, token: int) -> None:
        tokens = self.tokens
        tokens.append(token)
        end = len(tokens)
        for n in range(self.options.min_ngram, self.options.ngram + 1):
            if end < n:
                break
            key = tuple(tokens[end - n :])
            earlier = self._seen.get(key)
            if earlier is None:
                self._match.pop(n, None)
            else:
                self._match[n] = earlier
            self._seen[key] = end

    def length(self, cost: float) -> int:
        """How many tokens are worth drafting when each costs `cost` of a one-token step."""
        p = (self.hits + 1) / (self.hits + self.misses + 2)  # Laplace: 1/2 with no record
        if p <= cost:
            return 1 if self.idle >= self.options.probe_every else 0
        return min(self.options.max_draft, int(math.log(cost) / math.log(p)))

    def observe(self, drafted: int, accepted: int) -> None:
        """Record a step's outcome: `accepted` of `drafted` tokens kept (0 of 0: no draft). The
        record changes only with drafts: steps without one say nothing about the odds."""
        if not drafted:
            self.idle += 1
            return
        self.idle = 0
        keep = self.options.memory
        self.hits = self.hits * keep + accepted
        self.misses = self.misses * keep + (accepted < drafted)

    def draft(self, limit: int, cost: float = 0.0) -> list[int]:
        """Up to `limit` tokens that followed the longest earlier occurrence of the current suffix
        (fewer when past drafts were often wrong and each costs `cost` of a step)."""
        limit = min(limit, self.options.max_draft if cost <= 0 else self.length(cost))
        if limit <= 0:
            return []
        for n in range(self.options.ngram, self.options.min_ngram - 1, -1):
            start = self._match.get(n)
            if start is not None:
                return self.tokens[start : start + limit]
        return []


class DraftCost:
    """What one more token in a step costs, as a share of a one-token step, measured on the steps
    where a single sequence generates (with a draft or without)."""

    def __init__(self, initial: float) -> None:
        self.initial = initial
        self.step_seconds: float | None = None  # one token (running mean)
        self.token_seconds: float | None = None  # what each further token adds

    @property
    def share(self) -> float:
        """Kept under 1/2, the acceptance a request starts from, so that requests keep probing."""
        if self.step_seconds is None or self.token_seconds is None:
            return self.initial
        return min(max(self.token_seconds / self.step_seconds, 0.05), 0.45)

    def observe(self, tokens: int, seconds: float) -> None:
        # A step stalled by other work on the machine counts as at most three steps.
        one = self.step_seconds
        if tokens == 1:
            self.step_seconds = _average(one, seconds if one is None else min(seconds, 3 * one))
        elif one is not None:
            extra = min(max(seconds - one, 0.0) / (tokens - 1), 3 * one)
            self.token_seconds = _average(self.token_seconds, extra)


def _average(mean: float | None, value: float, weight: float = 0.1) -> float:
    return value if mean is None else mean + weight * (value - mean)
