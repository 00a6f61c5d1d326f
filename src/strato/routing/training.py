"""Train a router's classifier from what the gateway logged: traces of prompts the cheap (and
sometimes the strong) target answered, and the quality scores given to those answers.

Label rule, per distinct prompt (the last user message): the strong model is needed when the cheap
model's answers scored below `cutoff` on average and the strong model's did better (or the strong
model was never scored on that prompt). Prompts only the strong model answered say nothing about
the cheap one and are left out.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from strato.errors import StratoError
from strato.extras import require
from strato.providers import Shared
from strato.routing.learned import Classifier, Vectors, embed_texts, resolve_embedder
from strato.routing.report import target_price
from strato.store import Store
from strato.types import Price, Score, Trace, TraceQuery

Role = Literal["cheap", "strong"]

ALL = 10**9  # every trace: a TraceQuery needs a limit
MIN_PER_CLASS = 5  # prompts of each label needed to fit and to hold some out
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
UNSCORED_STRONG_QUALITY = 1.0  # the trade-off's assumption where the strong answer was never scored


class NotEnoughData(StratoError):
    status = 400
    type = "invalid_request_error"
    code = "not_enough_training_data"


@dataclass(frozen=True)
class Targets:
    router: str
    cheap: str
    strong: str

    def role(self, trace: Trace) -> Role | None:
        """Which target answered: through this router (its decision), or asked for directly."""
        route = trace.route or {}
        if trace.requested_model == self.router and route.get("router") == self.router:
            target = route.get("target")
        else:
            target = trace.requested_model
        return "cheap" if target == self.cheap else "strong" if target == self.strong else None


@dataclass(frozen=True)
class Example:
    text: str
    need_strong: bool
    cheap_score: float
    strong_score: float | None
    prompt_tokens: int  # of a cheap answer, for the cost estimates
    completion_tokens: int


@dataclass
class Labelled:
    examples: list[Example]
    scored_traces: int = 0
    strong_only: int = 0  # prompts with scores for the strong target only: no label


def prompt_text(request: dict[str, Any]) -> str | None:
    """The text a router embeds: the last user message, or a completion's prompt."""
    messages = request.get("messages")
    if isinstance(messages, list):
        users = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users and isinstance(users[-1], str) and users[-1].strip() else None
    prompt = request.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else None


def label(traces: Sequence[Trace], scores: Sequence[Score], targets: Targets, cutoff: float) -> Labelled:
    values: dict[str, list[float]] = defaultdict(list)
    for score in scores:
        values[score.trace_id].append(score.value)
    by_prompt: dict[str, dict[Role, list[float]]] = defaultdict(lambda: {"cheap": [], "strong": []})
    tokens: dict[str, tuple[int, int]] = {}
    texts: dict[str, str] = {}
    used = 0
    for trace in traces:
        role = targets.role(trace)
        text = prompt_text(trace.request)
        if role is None or text is None or trace.status >= 400 or trace.id not in values:
            continue
        key = " ".join(text.split())
        texts.setdefault(key, text)
        trace_scores = values[trace.id]
        by_prompt[key][role].append(sum(trace_scores) / len(trace_scores))
        if role == "cheap":
            tokens[key] = (trace.prompt_tokens, trace.completion_tokens)
        used += 1
    labelled = Labelled(examples=[], scored_traces=used)
    for key, seen in by_prompt.items():
        if not seen["cheap"]:
            labelled.strong_only += 1
            continue
        cheap = sum(seen["cheap"]) / len(seen["cheap"])
        strong = sum(seen["strong"]) / len(seen["strong"]) if seen["strong"] else None
        need = cheap < cutoff and (strong is None or strong > cheap)
        labelled.examples.append(Example(texts[key], need, cheap, strong, *tokens[key]))
    return labelled


@dataclass(frozen=True)
class TradeOff:
    """Routing the held-out prompts at one threshold."""

    threshold: float
    to_strong: float  # share of prompts sent to the strong target
    caught: float | None  # share of the prompts that needed the strong target that went there
    quality: float  # mean score of the answers the routed prompts would get
    cost: float | None  # cost relative to sending every prompt to the strong target


@dataclass
class Evaluation:
    train: int
    held_out: int
    accuracy: float  # at the threshold asked for
    auc: float | None  # threshold-free: how well P(strong needed) ranks the held-out prompts
    all_cheap_quality: float
    all_strong_quality: float
    trade_offs: list[TradeOff] = field(default_factory=list)


def enough(examples: Sequence[Example]) -> int:
    """How many examples needed the strong target; raises unless both labels have enough."""
    need = sum(e.need_strong for e in examples)
    fine = len(examples) - need
    if min(need, fine) < MIN_PER_CLASS:
        raise NotEnoughData(
            f"need at least {MIN_PER_CLASS} scored prompts of each kind; have {need} where the strong "
            f"target was needed and {fine} where the cheap one was good enough"
        )
    return need


def fit(
    vectors: Vectors, labels: npt.NDArray[np.bool_], c: float = 1.0
) -> tuple[Vectors, Vectors, Vectors, float]:
    """Standardise the embeddings, fit a logistic regression; (mean, scale, coef, intercept)."""
    from sklearn.linear_model import LogisticRegression

    mean = vectors.mean(axis=0)
    scale = vectors.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((vectors - mean) / scale, np.asarray(labels, dtype=int))
    return mean, scale, np.asarray(model.coef_[0], dtype=np.float64), float(model.intercept_[0])


def train(
    examples: Sequence[Example],
    vectors: Vectors,
    *,
    embedder: str,
    threshold: float = 0.5,
    prices: tuple[Price | None, Price | None] = (None, None),
    held_out: float = 0.25,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
) -> tuple[Classifier, Evaluation]:
    """Fit on a stratified share of the prompts, evaluate on the rest, then refit on all of them."""
    require("sklearn", "training a router")
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    labels = np.asarray([e.need_strong for e in examples], dtype=bool)
    need = enough(examples)
    fit_idx, test_idx = train_test_split(
        np.arange(len(examples)), test_size=held_out, stratify=labels, random_state=seed
    )
    classifier = Classifier(embedder, *fit(vectors[fit_idx], labels[fit_idx]))
    p = classifier.probabilities(vectors[test_idx])
    tested = [examples[i] for i in test_idx]
    truth = labels[test_idx]
    auc = float(roc_auc_score(truth, p)) if 0 < truth.sum() < len(truth) else None
    evaluation = Evaluation(
        train=len(fit_idx),
        held_out=len(test_idx),
        accuracy=float(np.mean((p >= threshold) == truth)),
        auc=auc,
        all_cheap_quality=float(np.mean([e.cheap_score for e in tested])),
        all_strong_quality=float(np.mean([_strong_quality(e) for e in tested])),
        trade_offs=[trade_off(t, p, tested, prices) for t in THRESHOLDS],
    )
    header = {
        **(meta or {}),
        "examples": len(examples),
        "need_strong": need,
        "held_out_accuracy": round(evaluation.accuracy, 4),
        "held_out_auc": None if auc is None else round(auc, 4),
        "trained_at": time.time(),
    }
    final = Classifier(embedder, *fit(vectors, labels), meta=header)
    return final, evaluation


def trade_off(
    threshold: float,
    p: Vectors,
    examples: Sequence[Example],
    prices: tuple[Price | None, Price | None],
) -> TradeOff:
    strong = p >= threshold
    needed = [s for s, e in zip(strong, examples, strict=True) if e.need_strong]
    quality = [_strong_quality(e) if s else e.cheap_score for s, e in zip(strong, examples, strict=True)]
    cheap_price, strong_price = prices
    cost: float | None = None
    if cheap_price is not None and strong_price is not None:
        all_strong = sum(strong_price.cost(e.prompt_tokens, e.completion_tokens) for e in examples)
        routed = sum(
            (strong_price if s else cheap_price).cost(e.prompt_tokens, e.completion_tokens)
            for s, e in zip(strong, examples, strict=True)
        )
        cost = routed / all_strong if all_strong > 0 else None
    return TradeOff(
        threshold=threshold,
        to_strong=float(np.mean(strong)),
        caught=float(np.mean(needed)) if needed else None,
        quality=float(np.mean(quality)),
        cost=cost,
    )


def _strong_quality(example: Example) -> float:
    return UNSCORED_STRONG_QUALITY if example.strong_score is None else example.strong_score


@dataclass
class Trained:
    labelled: Labelled
    classifier: Classifier
    evaluation: Evaluation
    prices: tuple[Price | None, Price | None]  # cheap, strong
    embed_seconds: float


def read_scored(store: Store, targets: Targets, score: str) -> tuple[list[Trace], list[Score]]:
    """Every trace of the router and of its two targets, and every score named `score`."""
    names = dict.fromkeys((targets.router, targets.cheap, targets.strong))
    traces = [t for name in names for t in store.traces(TraceQuery(limit=ALL, model=name))]
    return traces, store.scores(name=score)


async def learn(
    traces: Sequence[Trace],
    scores: Sequence[Score],
    targets: Targets,
    shared: Shared,
    *,
    embedder: str,
    cutoff: float = 0.5,
    threshold: float = 0.5,
    meta: dict[str, Any] | None = None,
) -> Trained:
    """Label the scored prompts, embed them with `embedder`, train and evaluate a classifier."""
    labelled = label(traces, scores, targets, cutoff)
    enough(labelled.examples)  # before loading an embedding model for nothing
    model, owned = resolve_embedder(shared, embedder)
    started = time.perf_counter()
    try:
        vectors = await embed_texts(model, embedder, [e.text for e in labelled.examples])
    finally:
        if owned:
            await model.aclose()
    seconds = time.perf_counter() - started
    prices = (target_price(shared, targets.cheap), target_price(shared, targets.strong))
    header = {**(meta or {}), "router": targets.router, "cutoff": cutoff}
    classifier, evaluation = train(
        labelled.examples, vectors, embedder=embedder, threshold=threshold, prices=prices, meta=header
    )
    return Trained(labelled, classifier, evaluation, prices, seconds)
