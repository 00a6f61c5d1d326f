"""`strato traces show` says what a local engine spent on the request (from its request span),
and that the energy is an estimate when it is one; a remote model's trace has no such line."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from strato.cli import app
from strato.store.sql import SQLStore
from strato.types import Endpoint, Span, Trace


def stored(data: Path, attributes: dict[str, object]) -> str:
    now = time.time()
    root = Span("0" * 16, "chat smol", now, now + 0.5, attributes=attributes)
    trace = Trace(
        id="a" * 32, started_at=now, endpoint=Endpoint.CHAT, requested_model="smol", request={}, spans=[root]
    )
    store = SQLStore.open(f"sqlite:///{data / 'strato.db'}")
    try:
        store.record([trace])
    finally:
        store.close()
    return trace.id


def show(data: Path, trace_id: str) -> str:
    env = {"STRATO_DATA_DIR": str(data), "STRATO_MASTER_KEY": "", "STRATO_CONFIG": "", "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["traces", "show", trace_id], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_engine_s_spend_is_shown(tmp_path: Path) -> None:
    spent = {
        "strato.engine.busy_seconds": 0.2646,
        "strato.engine.cpu_seconds": 0.5041,
        "strato.energy.joules": 3.781,
        "strato.energy.source": "estimate",
    }
    out = show(tmp_path, stored(tmp_path, spent))
    assert "busy 0.265 s, CPU 0.504 s, 3.78 J (estimate)" in out


def test_without_an_engine_there_is_no_engine_line(tmp_path: Path) -> None:
    out = show(tmp_path, stored(tmp_path, {"gen_ai.provider.name": "openai"}))
    engine = [line for line in out.splitlines() if line.startswith("engine")]
    assert engine == [] or engine[0].split()[1] == "-"
