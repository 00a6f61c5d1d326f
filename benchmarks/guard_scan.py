"""What a long text costs the guards, and what it costs the other requests on the event loop.

Text: COVID-QA's articles (`../shared/datasets/rag/`, scientific prose with e-mail addresses,
numbers and citations), joined and cut to `--chars` characters (1,000,000 by default: the default
`guards.max_scan_chars`, the most one request may carry).

1. **Cost per guard**: each built-in guard's blocking scan of the text, `--rounds` times, as CPU
   seconds per million characters (the best round: the figure the machine can do).
2. **The event loop while a long request is scanned**: `GuardSet.scan` of the text on the input
   side (every input guard, as `POST /v1/guards/scan` runs them), while a ticker on the same loop
   wakes every 5 ms, as `/healthz` would be answered; the ticker's worst and median lateness, with
   long texts scanned on the guards' worker thread (`guards.offload_chars` 4,000, the default) and
   with everything scanned in place (the gateway before issue 14).

    .venv/bin/python benchmarks/guard_scan.py [--chars 1000000] [--rounds 3]

Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from strato.config import GuardsSettings
from strato.guards.step import OFFLOADABLE, build_guards
from strato.guards.verdict import ScanContext

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "rag" / "covidqa_200423.json"
OUT = ROOT / "benchmarks" / "out" / "guard_scan.json"
TICK = 0.005


def text_of(chars: int) -> str:
    covid = json.loads(DATA.read_text(encoding="utf-8"))
    articles = [p["context"] for article in covid["data"] for p in article["paragraphs"]]
    text = "\n\n".join(articles)
    while len(text) < chars:
        text += "\n\n" + text
    return text[:chars]


def cost_per_guard(text: str, rounds: int) -> dict[str, dict[str, float]]:
    """CPU seconds per million characters of each guard's blocking scan (best and median round)."""
    guards = build_guards(GuardsSettings())
    found = {}
    for guard in guards.guards:
        if guard.name not in OFFLOADABLE:
            continue
        direction = "input" if "input" in guard.directions else "output"
        context = ScanContext(direction, None, settings=guards.settings)
        times = []
        for _ in range(rounds):
            start = time.process_time()
            guard.scan_now(text, context)  # type: ignore[attr-defined]
            times.append((time.process_time() - start) * 1_000_000 / len(text))
        found[guard.name] = {"best_s": min(times), "median_s": statistics.median(times)}
    guards.close()
    return found


async def loop_lateness(text: str, offload_chars: int) -> dict[str, float]:
    """The scan's wall time and how late a 5 ms ticker on the same loop woke meanwhile."""
    guards = build_guards(GuardsSettings(offload_chars=offload_chars))
    late: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            due = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            late.append(max(0.0, time.perf_counter() - due))

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    late.clear()
    start = time.perf_counter()
    await guards.scan(text, "input")
    wall = time.perf_counter() - start
    done.set()
    await task
    guards.close()
    return {
        "scan_s": wall,
        "ticks": len(late),
        "late_p50_ms": statistics.median(late) * 1000 if late else wall * 1000,
        "late_max_ms": max(late) * 1000 if late else wall * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=OUT)
    args = parser.parse_args()
    text = text_of(args.chars)

    costs = cost_per_guard(text, args.rounds)
    print(f"\nCPU seconds per million characters ({len(text):,} characters of COVID-QA articles):\n")
    print("| guard | best | median |\n|---|---:|---:|")
    for name, cost in costs.items():
        print(f"| {name} | {cost['best_s']:.2f} s | {cost['median_s']:.2f} s |")
    total = sum(cost["best_s"] for cost in costs.values())
    print(f"| all of them | {total:.2f} s | |")

    loop = {
        "offloaded (offload_chars 4,000)": asyncio.run(loop_lateness(text, 4_000)),
        "in place (before)": asyncio.run(loop_lateness(text, 10**9)),
    }
    print("\nThe event loop during one scan of the text by every input guard (a 5 ms ticker):\n")
    print("| scanned | scan | ticks | ticker late p50 | ticker late max |\n|---|---:|---:|---:|---:|")
    for name, row in loop.items():
        print(
            f"| {name} | {row['scan_s']:.2f} s | {row['ticks']} | {row['late_p50_ms']:.1f} ms "
            f"| {row['late_max_ms']:.0f} ms |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"chars": len(text), "cost_per_million": costs, "loop": loop}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
