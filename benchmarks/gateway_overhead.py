"""Gateway overhead: what strato and LiteLLM's proxy add on top of an upstream that costs nothing.

One run, one machine: Debian's nginx answers every chat completion with a fixed body (`return 200`),
then `wrk` drives POST /v1/chat/completions at it directly, through strato (one process, every
request traced to SQLite, metrics on) and through LiteLLM's proxy (one worker, master key set),
both pointed at the same nginx. Reported per system:

- latency p50 / p99 with 1 client, and what the gateway adds over the direct p50 / p99;
- requests/s with 32 clients (and its p50 latency);
- for strato, that the traces were all stored (count in the database afterwards).

    apt-get install nginx-light wrk       # once
    make .venv-litellm/bin/litellm        # LiteLLM's proxy in a virtualenv of its own
    .venv/bin/python benchmarks/gateway_overhead.py [--duration 10] [--systems direct strato litellm]
        [--litellm .venv-litellm/bin/litellm] [--json benchmarks/out/gateway_overhead.json]

LiteLLM runs from its own virtualenv (`litellm[proxy]==1.100.5`), so its dependencies never mix
with strato's. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

MODEL = "fixed"
MASTER_KEY = "sk-bench-master"
REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
ANSWER = {
    "id": "chatcmpl-fixed",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
"""
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A server on a free port, stopped on exit; its output goes to a log file in `tmp`."""

    def __init__(
        self, name: str, command: list[str], port: int, tmp: Path, env: dict[str, str] | None = None
    ):
        self.name, self.port = name, port
        self.log_path = tmp / f"{name}.log"
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited early; see {self.log_path}")
            try:
                reply = httpx.post(
                    f"{self.url}/v1/chat/completions", json=REQUEST, headers=headers, timeout=5
                )
                if reply.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        sys.exit(f"{self.name} did not become ready; see {self.log_path}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_nginx(tmp: Path) -> Process:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("nginx is not installed (apt-get install nginx-light)")
    port = free_port()
    (tmp / "body").mkdir()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=json.dumps(ANSWER)))
    return Process("nginx", [nginx, "-c", str(conf), "-p", str(tmp)], port, tmp)


def start_strato(tmp: Path, upstream: str) -> Process:
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "store": {"database_url": f"sqlite:///{tmp / 'strato.db'}"},
        "models": [
            {
                "name": MODEL,
                "provider": "openai",
                "base_url": f"{upstream}/v1",
                "upstream_model": MODEL,
                "input_cost": 0.15,
                "output_cost": 0.6,
            }
        ],
    }
    path = tmp / "strato.yaml"
    path.write_text(yaml.safe_dump(config))
    strato = Path(sys.executable).with_name("strato")
    return Process("strato", [str(strato), "serve", "--config", str(path)], port, tmp)


def start_litellm(tmp: Path, upstream: str, binary: Path) -> Process:
    if not binary.exists():
        sys.exit(f"{binary} not found: run `make .venv-litellm` (litellm[proxy]==1.100.5 in its own venv)")
    port = free_port()
    config = {
        "model_list": [
            {
                "model_name": MODEL,
                "litellm_params": {"model": f"openai/{MODEL}", "api_base": f"{upstream}/v1", "api_key": "x"},
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
    }
    path = tmp / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        str(binary),
        "--config",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    return Process("litellm", command, port, tmp, env={"LITELLM_LOG": "ERROR"})


def wrk(url: str, clients: int, duration: int, script: Path, threads: int = 1) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{clients}", f"-d{duration}s", "--latency", "-s", str(script),
         f"{url}/v1/chat/completions"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
    }
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        result[f"p{pct}_ms"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    result["non_2xx"] = float(non_2xx.group(1)) if non_2xx else 0.0
    if errors:
        print(f"  wrk: {errors.group(0)}")
    return result


def measure(name: str, url: str, duration: int, script: Path) -> dict[str, Any]:
    warm = wrk(url, 1, 2, script)  # warm up connections and code paths
    one = wrk(url, 1, duration, script)
    many = wrk(url, 32, duration, script)
    sent = int(warm["requests"] + one["requests"] + many["requests"])
    print(
        f"  {name}: 1 client p50 {one['p50_ms']:.3f} ms p99 {one['p99_ms']:.3f} ms; "
        f"32 clients {many['rps']:.0f} req/s"
    )
    return {"one_client": one, "32_clients": many, "requests_sent": sent}


def stored_traces(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM traces").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument("--systems", nargs="+", default=["direct", "strato", "litellm"])
    parser.add_argument("--litellm", type=Path, default=Path(".venv-litellm/bin/litellm"))
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/gateway_overhead.json"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")

    results: dict[str, Any] = {"duration_s": args.duration, "cpus": os.cpu_count(), "systems": {}}
    with tempfile.TemporaryDirectory(prefix="strato-overhead-") as name:
        tmp = Path(name)
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=json.dumps(REQUEST), key=MASTER_KEY))
        nginx = start_nginx(tmp)
        try:
            nginx.wait_ready()
            for system in args.systems:
                print(f"{system}:")
                if system == "direct":
                    results["systems"][system] = measure(system, nginx.url, args.duration, script)
                    continue
                server = (
                    start_strato(tmp, nginx.url)
                    if system == "strato"
                    else start_litellm(tmp, nginx.url, args.litellm)
                )
                try:
                    server.wait_ready()
                    results["systems"][system] = measure(system, server.url, args.duration, script)
                finally:
                    server.stop()
                if system == "strato":
                    results["systems"][system]["traces_stored"] = stored_traces(tmp / "strato.db")
        finally:
            nginx.stop()
    report(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


def report(results: dict[str, Any]) -> None:
    systems = results["systems"]
    direct = systems.get("direct", {}).get("one_client")
    print(
        f"\n{'system':<10} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'req/s @32':>10}"
    )
    for name, figures in systems.items():
        one, many = figures["one_client"], figures["32_clients"]
        added = (
            (f"{one['p50_ms'] - direct['p50_ms']:.3f}", f"{one['p99_ms'] - direct['p99_ms']:.3f}")
            if direct and name != "direct"
            else ("-", "-")
        )
        print(
            f"{name:<10} {one['p50_ms']:>8.3f} {one['p99_ms']:>8.3f} {added[0]:>10} {added[1]:>10} "
            f"{many['rps']:>10.0f}"
        )
    if "strato" in systems and "litellm" in systems:
        ratio = systems["strato"]["32_clients"]["rps"] / systems["litellm"]["32_clients"]["rps"]
        print(f"\nstrato serves {ratio:.1f}x LiteLLM's requests/s at 32 clients")
        results["strato_vs_litellm_rps"] = round(ratio, 2)
    if "strato" in systems:
        strato = systems["strato"]
        print(
            f"strato stored {strato['traces_stored']} traces for {strato['requests_sent']} requests "
            "(plus its readiness checks)"
        )


if __name__ == "__main__":
    main()
