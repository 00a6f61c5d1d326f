"""What the guards add to a typical chat request: the input step and the output step, timed.

A typical request here is an MT-Bench first turn (`../shared/datasets/quality/`) under a short
system prompt, and its answer a GPT-4 reference answer of the same set (or the question's second
turn where there is none), so the guards read a realistic prompt and a realistic answer. Both steps
run inline on the gateway's event loop, so their time is the time they add to the request.

Two configurations:
- **default**: the guards as strato ships them (secrets redacted, prompt injection and output
  anomalies, profanity and PII in answers flagged; the PII input policy is opt-in and off).
- **all on**: every pattern guard enforced (PII redacted on input, injection blocked, secrets
  redacted both ways, a banned-word list). Banned topics are left out: they embed every sentence
  with MiniLM, about 10 ms a sentence here, and are off unless topics are configured.

    .venv/bin/python benchmarks/guards_overhead.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from strato.config import GuardsSettings
from strato.guards.step import GuardSet, build_guards
from strato.types import GenerationRequest, Message, SamplingParams

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "quality"
OUT = ROOT / "benchmarks" / "out" / "guards_overhead.json"
SYSTEM = "You are a helpful assistant for Acme Corp. Answer concisely and politely."
ROUNDS = 5

CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "all on": {
        "pii": {"enforce": True, "input": {"action": "redact"}},
        "injection": {"action": "block"},
        "secrets": {"action": "redact", "output_action": "redact"},
        "words": {"words": ["project zephyr", "internal only", "acme secret"]},
    },
}


def conversations() -> list[tuple[str, str]]:
    questions = [json.loads(line) for line in (DATA / "mt_bench_questions.jsonl").read_text().splitlines()]
    references = {}
    for line in (DATA / "mt_bench_reference_gpt4.jsonl").read_text().splitlines():
        row = json.loads(line)
        turns = row["choices"][0]["turns"] if row.get("choices") else []
        if turns:
            references[row["question_id"]] = turns[0]
    return [(q["turns"][0], references.get(q["question_id"], q["turns"][1])) for q in questions]


async def time_requests(guards: GuardSet, pairs: list[tuple[str, str]]) -> list[float]:
    times = []
    for question, answer in pairs:
        request = GenerationRequest(
            model="m",
            params=SamplingParams(),
            messages=(Message(role="system", content=SYSTEM), Message(role="user", content=question)),
        )
        start = time.perf_counter()
        guarded = await guards.check_input(request, None)
        await guards.check_output(answer, guarded, "stop")
        times.append((time.perf_counter() - start) * 1000)
    return times


def run() -> dict[str, Any]:
    pairs = conversations()
    results: dict[str, Any] = {"requests": len(pairs), "rounds": ROUNDS, "configs": {}}
    for name, config in CONFIGS.items():
        guards = build_guards(GuardsSettings.model_validate(config))
        asyncio.run(time_requests(guards, pairs))  # warm-up: loads the classifier, fills caches
        times: list[float] = []
        for _ in range(ROUNDS):
            times += asyncio.run(time_requests(guards, pairs))
        times.sort()
        results["configs"][name] = {
            "p50_ms": statistics.median(times),
            "p95_ms": times[int(len(times) * 0.95)],
            "max_ms": times[-1],
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    print(f"\nGuards added to a chat request ({results['requests']} MT-Bench turns x {results['rounds']})")
    print(f"{'configuration':14s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
    for name, row in results["configs"].items():
        print(f"{name:14s} {row['p50_ms']:8.3f} {row['p95_ms']:8.3f} {row['max_ms']:8.3f}")


def main() -> None:
    results = run()
    print_table(results)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
