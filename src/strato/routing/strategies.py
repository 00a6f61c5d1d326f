"""Ways to order a group's deployments for one request: the first available one is tried first."""

from __future__ import annotations

import random
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, TypeVar


class Strategy(StrEnum):
    WEIGHTED = "weighted"  # random, in proportion to `weight`
    LEAST_BUSY = "least_busy"  # fewest requests in flight
    LATENCY = "latency"  # lowest recent latency (untried ones first, to measure them)
    COST = "cost"  # cheapest price per million tokens


class Candidate(Protocol):
    @property
    def weight(self) -> float: ...
    @property
    def price(self) -> float: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def latency(self) -> float | None: ...


C = TypeVar("C", bound=Candidate)


def order(strategy: Strategy, candidates: Sequence[C], rng: random.Random) -> list[C]:
    if strategy is Strategy.WEIGHTED:
        return _weighted_order(candidates, rng)
    shuffled = list(candidates)
    rng.shuffle(shuffled)  # ties go to a random one, so equal deployments share the load
    if strategy is Strategy.LEAST_BUSY:
        return sorted(shuffled, key=lambda c: c.in_flight)
    if strategy is Strategy.LATENCY:
        return sorted(shuffled, key=lambda c: -1.0 if c.latency is None else c.latency)
    return sorted(shuffled, key=lambda c: (c.price, c.in_flight))


def _weighted_order(candidates: Sequence[C], rng: random.Random) -> list[C]:
    """A weighted draw without replacement (Efraimidis-Spirakis keys)."""
    keyed = [(rng.random() ** (1.0 / c.weight) if c.weight > 0 else 0.0, i) for i, c in enumerate(candidates)]
    return [candidates[i] for _, i in sorted(keyed, reverse=True)]
