"""`strato router train` and `strato router report`, run as a user runs them: a subprocess with a
config file and a real SQLite store holding traces and scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from strato.routing.learned import Classifier
from strato.store import open_store
from strato.types import Price
from tests.support.router_data import answered, clinc, gsm8k, write_scored

SMALL, BIG = Price(0.1, 0.2), Price(3.0, 15.0)


def strato(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STRATO_DATA_DIR": str(tmp / "data"),
        "STRATO_CONFIG": str(tmp / "strato.yaml"),
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "strato", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp,
    )


def configure(tmp: Path, **router: Any) -> Path:
    dead = "http://127.0.0.1:9/v1"  # nothing is called: the verbs read traces and prices
    models = [
        {"name": "small", "provider": "openai", "base_url": dead, "input_cost": 0.1, "output_cost": 0.2},
        {"name": "big-1", "provider": "openai", "base_url": dead, "input_cost": 3.0, "output_cost": 15.0},
        {"name": "big", "provider": "group", "deployments": ["big-1"]},
        {"name": "auto", "provider": "router", "cheap": "small", "strong": "big", **router},
    ]
    (tmp / "strato.yaml").write_text(yaml.safe_dump({"models": models}))
    return tmp / "data" / "strato.db"


def test_train_fits_on_scored_traces_and_the_gateway_loads_the_model(tmp_path: Path) -> None:
    model = tmp_path / "router-auto.npz"
    database = configure(tmp_path, learned={"model_path": str(model), "threshold": 0.4})
    store = open_store(f"sqlite:///{database}")
    try:
        write_scored(store, gsm8k()[:40], clinc()[:40], compared=5)
    finally:
        store.close()

    result = strato("router", "train", "--router", "auto", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "90 traces scored 'quality' -> 80 prompts: 40 needed the strong target, 40 were fine" in out
    assert "held out 20 prompts (trained on 60): accuracy" in out and "AUC" in out
    for column in ("threshold", "to strong", "needed caught", "quality", "cost vs all strong"):
        assert column in out
    assert "0.4 *" in out  # the configured threshold is marked
    assert f"wrote {model}" in " ".join(out.split())
    saved = Classifier.load(model)
    assert saved.embedder == "all-minilm-l6-v2" and saved.meta["examples"] == 80
    assert saved.meta["held_out_accuracy"] >= 0.9

    listed = strato("models", tmp=tmp_path)  # builds every model, the router with its classifier
    assert listed.returncode == 0, listed.stderr
    assert "router" in listed.stdout


def test_train_says_when_there_is_not_enough_to_learn_from(tmp_path: Path) -> None:
    database = configure(tmp_path)
    store = open_store(f"sqlite:///{database}")
    try:
        write_scored(store, gsm8k()[:3], clinc()[:30])
    finally:
        store.close()
    result = strato("router", "train", "--router", "auto", "--out", str(tmp_path / "m.npz"), tmp=tmp_path)
    assert result.returncode == 2
    assert "need at least 5 scored prompts of each kind; have 3 where the strong" in result.stderr
    assert not (tmp_path / "m.npz").exists()
    unknown = strato("router", "train", "--router", "nope", tmp=tmp_path)
    assert unknown.returncode == 2 and "no router named 'nope'" in unknown.stderr


def routed(target: str, reason: str, score: float | None = None, *, days_ago: float = 0) -> Any:
    route = {"router": "auto", "target": target, "reason": reason, "decision_ms": 0.5}
    if score is not None:
        route["score"] = score
    deployment, price = ("small", SMALL) if target == "small" else ("big-1", BIG)
    return answered(
        deployment,
        "a question",
        requested="auto",
        route=route,
        started_at=time.time() - days_ago * 86400,
        tokens=(100, 50),
        cost=price.cost(100, 50),
    )


def test_report_shows_shares_reasons_decision_time_and_savings(tmp_path: Path) -> None:
    database = configure(tmp_path)
    store = open_store(f"sqlite:///{database}")
    try:
        store.record(
            [
                *(routed("small", "rule:greeting") for _ in range(4)),
                *(routed("small", "learned", 0.2) for _ in range(3)),
                *(routed("big", "rule:code") for _ in range(2)),
                routed("big", "learned", 0.8),
                *(routed("big", "rule:long", days_ago=3) for _ in range(2)),
            ]
        )
    finally:
        store.close()

    result = strato("router", "report", "--router", "auto", "--since", "1d", "--json", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["requests"] == 10 and report["to_strong"] == 3
    assert report["reasons"] == {"rule:greeting": 4, "learned": 4, "rule:code": 2}
    assert report["reasons_to_strong"] == {"learned": 1, "rule:code": 2}
    all_strong = 10 * BIG.cost(100, 50)
    spent = 7 * SMALL.cost(100, 50) + 3 * BIG.cost(100, 50)
    assert report["all_strong_cost"] == pytest.approx(all_strong)
    assert report["cost"] == pytest.approx(spent)
    assert report["saved"] == pytest.approx(all_strong - spent)
    assert report["decision_p50_ms"] == pytest.approx(0.5)

    table = strato("router", "report", "--router", "auto", tmp=tmp_path)
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "router auto: 12 requests, 41.7% to strong (big), 58.3% to cheap (small)" in text
    assert "rule:greeting 4 33.3% 0" in text and "rule:long 2 16.7% 2" in text
    saved = 12 * BIG.cost(100, 50) - (7 * SMALL.cost(100, 50) + 5 * BIG.cost(100, 50))
    assert f"saved ${saved:.6f} ({saved / (12 * BIG.cost(100, 50)):.1%})" in text


def test_a_bad_router_config_is_one_line_at_start(tmp_path: Path) -> None:
    configure(tmp_path, rules=[{"name": "greeting", "pattern": "(?i)^(hi|hello", "target": "cheap"}])
    result = strato("models", tmp=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strato: error: model 'auto': rules.0.pattern:")
    assert "not a valid regular expression" in lines[0]
