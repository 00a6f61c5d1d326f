"""The `strato` command, run as a user runs it: a subprocess with its own data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def strato(
    *args: str, data_dir: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "STRATO_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "strato", *args],
        capture_output=True,
        text=True,
        env=environ,
        input=stdin,
        timeout=300,
        cwd=data_dir.parent,
    )


def test_chat_one_shot_streams_and_is_traced(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = strato("chat", "What is 2+2?", "--temperature", "0", "--max-tokens", "30", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "4" in result.stdout

    listed = strato("traces", "list", "--json", data_dir=data)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == "smollm2-135m-instruct" and row["status"] == 200 and row["stream"]
    assert row["completion"].strip() == result.stdout.strip()
    assert row["usage"]["prompt_tokens"] > 0 and row["usage"]["completion_tokens"] > 0

    table = strato("traces", "list", data_dir=data)
    assert (
        row["id"] in table.stdout
        and "smollm2-135m-instruct" in table.stdout
        and "What is 2+2?" in table.stdout
    )

    narrow = strato("traces", "list", data_dir=data, env={"COLUMNS": "80"})
    assert row["id"] in narrow.stdout  # the id is never cut, however narrow the terminal

    shown = strato("traces", "show", row["id"][:8], data_dir=data)
    assert shown.returncode == 0
    assert row["id"] in shown.stdout
    assert "What is 2+2?" in shown.stdout and "completion" in shown.stdout and "latency_ms" in shown.stdout


def test_interactive_chat_keeps_history(tmp_path: Path) -> None:
    data = tmp_path / "d"
    result = strato(
        "chat",
        "--temperature",
        "0",
        "--max-tokens",
        "20",
        data_dir=data,
        stdin="My name is Ada.\nWhat is my name?\n/exit\n",
    )
    assert result.returncode == 0, result.stderr
    listed = [
        json.loads(line) for line in strato("traces", "list", "--json", data_dir=data).stdout.splitlines()
    ]
    assert len(listed) == 2
    second_turn = listed[0]["request"]["messages"]
    assert [m["role"] for m in second_turn] == ["user", "assistant", "user"]
    assert second_turn[0]["content"] == "My name is Ada."


def test_models_lists_the_defaults(tmp_path: Path) -> None:
    result = strato("models", data_dir=tmp_path / "d")
    assert result.returncode == 0
    assert "smollm2-135m-instruct" in result.stdout and "all-minilm-l6-v2" in result.stdout


def test_errors_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    missing = strato("traces", "show", "nope", data_dir=data)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("strato: error: no trace 'nope'")

    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {port: many}\n")
    for verb in (["models"], ["serve"], ["traces", "list"], ["chat", "hi"]):
        result = strato(*verb, "--config", str(bad), data_dir=data)
        assert result.returncode == 2, (verb, result.stderr)
        assert (
            result.stderr.count("\n") == 1
            and "server.port" in result.stderr
            and "Traceback" not in result.stderr
        )

    unknown = strato("chat", "hi", "--model", "gpt-9", data_dir=data)
    assert unknown.returncode == 2 and "gpt-9" in unknown.stderr and "Traceback" not in unknown.stderr
