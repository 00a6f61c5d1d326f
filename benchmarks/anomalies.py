"""Anomaly detection on benign answers: how often REFUSAL and LANGUAGE_SWITCH (and the content
anomalies) flag answers that are fine, and what `AnomalyWatch.check` costs per response.

Data, read in place from ../shared/datasets/quality: GPT-4's MT-Bench reference answers (30
questions, two turns each: 60 answers, each judged against the user turn it answers, the earlier
turns as history) and GSM8K's worked solutions (1,319 answers to their questions). Every flag on
them is a false positive; the flagged answers are printed.

Cost: per call, CPU time of the calling thread (so other processes on the machine do not inflate
it), p50 and p90, twice: as in the gateway, where the output guard has just judged the same answer
(its content findings are remembered), and cold (the content checks run again).

    .venv/bin/python benchmarks/anomalies.py

Not a test: prints a table and writes benchmarks/out/anomalies.json.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from strato.config.observe import ObserveSettings
from strato.guards.anomalies import content_anomalies
from strato.observe.anomalies import AnomalyWatch
from strato.observe.metrics import GatewayMetrics
from strato.types import Endpoint, Trace

QUALITY = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "quality"
OUT = Path(__file__).resolve().parent / "out" / "anomalies.json"
ROUNDS = 5


def mt_bench() -> list[tuple[list[dict[str, str]], str]]:
    questions = {
        q["question_id"]: q["turns"]
        for q in map(json.loads, (QUALITY / "mt_bench_questions.jsonl").read_text().splitlines())
    }
    cases: list[tuple[list[dict[str, str]], str]] = []
    for row in map(json.loads, (QUALITY / "mt_bench_reference_gpt4.jsonl").read_text().splitlines()):
        history: list[dict[str, str]] = []
        for question, answer in zip(questions[row["question_id"]], row["choices"][0]["turns"], strict=True):
            history = [*history, {"role": "user", "content": question}]
            cases.append((history, answer))
            history = [*history, {"role": "assistant", "content": answer}]
    return cases


def gsm8k() -> list[tuple[list[dict[str, str]], str]]:
    rows = map(json.loads, (QUALITY / "gsm8k_test.jsonl").read_text().splitlines())
    return [([{"role": "user", "content": r["question"]}], r["answer"]) for r in rows]


def covid_qa() -> list[tuple[list[dict[str, str]], str]]:
    data = json.loads((QUALITY.parent / "rag" / "covidqa_200423.json").read_text())
    return [
        ([{"role": "user", "content": qa["question"]}], qa["answers"][0]["text"])
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
        if qa["answers"]
    ]


def trace(messages: list[dict[str, str]], answer: str) -> Trace:
    return Trace("t", time.time(), Endpoint.CHAT, "m", {"messages": messages}, completion=answer, status=200)


def measure(name: str, cases: list[tuple[list[dict[str, str]], str]], watch: AnomalyWatch) -> dict[str, Any]:
    flagged: dict[str, list[str]] = {}
    warm: list[float] = []
    cold: list[float] = []
    for messages, answer in cases:
        checked = trace(messages, answer)
        watch.check(checked, "m")
        for kind in checked.anomalies:
            flagged.setdefault(kind, []).append(answer[:100])
    for _ in range(ROUNDS):
        for messages, answer in cases:
            content_anomalies(answer)  # the output guard, just before
            checked = trace(messages, answer)
            started = time.thread_time()
            watch.check(checked, "m")
            warm.append(time.thread_time() - started)
        for messages, answer in cases:
            checked = trace(messages, answer + " ")  # another text: nothing remembered
            started = time.thread_time()
            watch.check(checked, "m")
            cold.append(time.thread_time() - started)
    return {
        "source": name,
        "answers": len(cases),
        "flags": {kind: len(found) for kind, found in sorted(flagged.items())},
        "rates": {kind: len(found) / len(cases) for kind, found in sorted(flagged.items())},
        "flagged": flagged,
        "check_us": {
            "warm_p50": statistics.median(warm) * 1e6,
            "warm_p90": statistics.quantiles(warm, n=10)[-1] * 1e6,
            "cold_p50": statistics.median(cold) * 1e6,
            "cold_p90": statistics.quantiles(cold, n=10)[-1] * 1e6,
        },
    }


def main() -> None:
    watch = AnomalyWatch(ObserveSettings(), GatewayMetrics())
    if not watch.languages.load(60):
        raise SystemExit("py3langid's model did not load")
    results = [
        measure("mt_bench_reference_gpt4", mt_bench(), watch),
        measure("gsm8k_test", gsm8k(), watch),
        measure("covidqa (answer spans)", covid_qa(), watch),
    ]
    heads = ("answers", "REFUSAL", "LANG_SW", "other", "p50 µs", "p90 µs", "cold p50")
    print(f"{'source':<26}" + "".join(f"{h:>10}" for h in heads))
    for r in results:
        flags = r["flags"]
        other = sum(v for k, v in flags.items() if k not in ("REFUSAL", "LANGUAGE_SWITCH"))
        cost = r["check_us"]
        cells = (
            r["answers"],
            flags.get("REFUSAL", 0),
            flags.get("LANGUAGE_SWITCH", 0),
            other,
            f"{cost['warm_p50']:.0f}",
            f"{cost['warm_p90']:.0f}",
            f"{cost['cold_p50']:.0f}",
        )
        print(f"{r['source']:<26}" + "".join(f"{c:>10}" for c in cells))
        for kind, answers in r["flagged"].items():
            for answer in answers:
                print(f"  {kind}: {answer!r}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
