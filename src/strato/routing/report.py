"""What a router decided, from its traces: how much went to the strong target and why, how long
deciding took, and what routing saved against sending everything to the strong target."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from strato.errors import StratoError
from strato.providers import Shared
from strato.routing.group import ModelGroup
from strato.types import Price, Trace


@dataclass
class RouteReport:
    router: str
    requests: int = 0
    to_strong: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    reasons_to_strong: Counter[str] = field(default_factory=Counter)
    targets: Counter[str] = field(default_factory=Counter)
    decision_p50_ms: float | None = None
    decision_p99_ms: float | None = None
    cost: float = 0.0  # USD, what the routed requests cost
    all_strong_cost: float | None = None  # USD, had every one gone to the strong target
    unpriced: int = 0  # requests whose own cost is unknown (left out of both sums)

    @property
    def saved(self) -> float | None:
        return None if self.all_strong_cost is None else self.all_strong_cost - self.cost


def summarize(
    traces: Sequence[Trace],
    router: str,
    strong: str,
    strong_price: Price | None,
    price_of: Callable[[str], Price | None],
) -> RouteReport:
    """`price_of` prices the deployment that answered, for traces recorded without a cost. The
    all-strong estimate prices each request's own token counts at the strong target's price."""
    report = RouteReport(router)
    decision_ms: list[float] = []
    all_strong = 0.0
    for trace in traces:
        route = trace.route
        if not route or route.get("router") != router:
            continue
        target, reason = str(route.get("target")), str(route.get("reason"))
        report.requests += 1
        report.targets[target] += 1
        report.reasons[reason] += 1
        if target == strong:
            report.to_strong += 1
            report.reasons_to_strong[reason] += 1
        decision_ms.append(float(route.get("decision_ms", 0.0)))
        cost = trace.cost
        if cost is None and trace.deployment is not None:
            price = price_of(trace.deployment)
            cost = None if price is None else price.cost(trace.prompt_tokens, trace.completion_tokens)
        if cost is None:
            report.unpriced += 1
            continue
        report.cost += cost
        if strong_price is not None:
            all_strong += strong_price.cost(trace.prompt_tokens, trace.completion_tokens)
    if decision_ms:
        report.decision_p50_ms = float(np.percentile(decision_ms, 50))
        report.decision_p99_ms = float(np.percentile(decision_ms, 99))
    report.all_strong_cost = all_strong if strong_price is not None else None
    return report


def target_price(shared: Shared, name: str) -> Price | None:
    """A model's price; for a model group without one, the mean of its deployments' prices."""
    if name in shared.prices:
        return shared.prices[name]
    try:
        provider = shared.generator(name)
    except StratoError:
        return None
    if not isinstance(provider, ModelGroup):
        return None
    prices = [shared.prices[d.name] for d in provider.deployments if d.name in shared.prices]
    if not prices:
        return None
    return Price(sum(p.input for p in prices) / len(prices), sum(p.output for p in prices) / len(prices))
