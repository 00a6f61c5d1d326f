"""`strato datasets`, run as a user runs it: import a file (the real GSM8K among them) with bad rows
reported by line, list, show, export it again, and make a data set from recorded traces, which
needs the admin key once a gateway with auth has run on the database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from strato.auth import KeyStore
from strato.evals.datasets import DatasetStore, load_file
from strato.store import open_store
from strato.types import Endpoint, Score, Trace
from tests.cli.test_cli import strato
from tests.evals.test_datasets import GSM8K, shared

ADMIN = "sk-admin-datasets"


def config_file(tmp_path: Path) -> Path:
    """A strato.yaml whose store is a scratch SQLite database, as a user would write one."""
    path = tmp_path / "strato.yaml"
    path.write_text(yaml.safe_dump({"store": {"database_url": f"sqlite:///{tmp_path / 'evals.db'}"}}))
    return path


def test_import_list_show_export_the_real_gsm8k(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    data = tmp_path / "d"
    imported = strato(
        "datasets", "import", str(shared(GSM8K)), "--name", "gsm8k", "--config", str(config), data_dir=data
    )
    assert imported.returncode == 0, imported.stderr
    assert f"loaded 1319 rows from {GSM8K} into gsm8k version 1" in imported.stdout and imported.stderr == ""

    listed = strato("datasets", "list", "--json", "--config", str(config), data_dir=data)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["version"], r["size"]) for r in rows] == [("gsm8k", 1, 1319)]
    assert rows[0]["source"] == {"kind": "file", "file": str(GSM8K), "format": "jsonl", "rows": 1319}
    table = strato("datasets", "list", "--config", str(config), data_dir=data)
    assert "gsm8k" in table.stdout and "1319" in table.stdout

    shown = strato("datasets", "show", "gsm8k", "--limit", "2", "--config", str(config), data_dir=data)
    assert shown.returncode == 0, shown.stderr
    assert "Janet’s ducks lay 16 eggs" in shown.stdout and "#### 18" in shown.stdout
    assert "2 of 1319 cases shown" in shown.stdout
    as_json = strato("datasets", "show", "gsm8k", "-n", "1", "--json", "--config", str(config), data_dir=data)
    assert json.loads(as_json.stdout)["expected"].endswith("#### 18")

    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"gsm8k{suffix}"
        exported = strato(
            "datasets", "export", "gsm8k", "-o", str(out), "--config", str(config), data_dir=data
        )
        assert exported.returncode == 0, exported.stderr
        assert f"wrote 1319 cases of gsm8k version 1 to {out}" in exported.stdout
        assert load_file(out) == load_file(GSM8K)

    again = strato(
        "datasets",
        "import",
        str(tmp_path / "gsm8k.csv"),
        "--name",
        "gsm8k",
        "--config",
        str(config),
        data_dir=data,
    )
    assert "into gsm8k version 2" in again.stdout
    second = strato(
        "datasets",
        "export",
        "gsm8k",
        "--version",
        "1",
        "-o",
        str(tmp_path / "v1.jsonl"),
        "--config",
        str(config),
        data_dir=data,
    )
    assert "gsm8k version 1" in second.stdout


def test_bad_rows_are_reported_by_line_and_the_rest_loaded(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    data = tmp_path / "d"
    rows = tmp_path / "mixed.jsonl"
    rows.write_text(
        '{"question": "2+2?", "answer": "4"}\n{broken\n{"answer": "no question"}\n{"input": "Hi"}\n'
    )
    result = strato(
        "datasets", "import", str(rows), "--name", "mixed", "--config", str(config), data_dir=data
    )
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "line 2: not valid JSON: Expecting property name enclosed in double quotes at column 2",
        "line 3: no input: give input, messages, question, prompt or turns (keys: answer)",
    ]
    assert "loaded 2 rows" in result.stdout and "2 bad rows skipped" in result.stdout

    nothing = tmp_path / "nothing.jsonl"
    nothing.write_text("{broken\n[1, 2]\n")
    refused = strato(
        "datasets", "import", str(nothing), "--name", "nothing", "--config", str(config), data_dir=data
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[:2] == [
        "line 1: not valid JSON: Expecting property name enclosed in double quotes at column 2",
        "line 2: expected a JSON object, got a list",
    ]
    assert "none of its 2 rows could be loaded" in refused.stderr.splitlines()[-1]

    bad_name = strato(
        "datasets", "import", str(rows), "--name", "no spaces", "--config", str(config), data_dir=data
    )
    assert bad_name.returncode == 2 and "use 1-128 letters" in bad_name.stderr
    missing = strato("datasets", "show", "nope", "--config", str(config), data_dir=data)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "strato: error: no data set 'nope' (data sets: mixed)"


def record_traces(url: str) -> None:
    store = open_store(url)
    try:
        store.record(
            [
                Trace(
                    "t1",
                    100.0,
                    Endpoint.CHAT,
                    "smollm2",
                    {"messages": [{"role": "user", "content": "Mail ada@example.com: what is 6 * 7?"}]},
                    completion="6 * 7 = 48",
                    status=200,
                ),
                Trace(
                    "t2",
                    200.0,
                    Endpoint.CHAT,
                    "smollm2",
                    {"messages": [{"role": "user", "content": "Say hi"}], "temperature": 0.0},
                    completion="",
                    status=200,
                    anomalies=["EMPTY_ANSWER"],
                ),
            ]
        )
        store.add_scores([Score("t1", "feedback", 0.0, "user", correction="6 * 7 = 42")])
    finally:
        store.close()


def test_from_traces(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'evals.db'}"
    data = tmp_path / "d"
    record_traces(url)

    def run(*args: str) -> str:
        result = strato("datasets", *args, "--config", str(config), data_dir=data)
        assert result.returncode == 0, result.stderr
        return result.stdout

    made = run(
        "from-traces", "--name", "wrong-answers", "--feedback", "negative", "--description", "fix these"
    )
    assert "stored 1 cases from traces as wrong-answers version 1" in made
    assert "1 with a corrected answer" in made and "PII or secrets replaced in 1" in made
    case = json.loads(run("show", "wrong-answers", "--json"))
    assert case["input"]["messages"][0]["content"] == "Mail <EMAIL_ADDRESS_1>: what is 6 * 7?"
    assert case["expected"] == "6 * 7 = 42" and case["trace_id"] == "t1"

    run("from-traces", "--name", "empty", "--anomaly", "empty_answer", "--no-scrub", "--until", "2000-01-01")
    datasets = DatasetStore.open(url)
    _, cases = datasets.get("empty")
    datasets.close()
    assert [c.trace_id for c in cases] == ["t2"] and cases[0].input["params"] == {"temperature": 0.0}
    raw = run("from-traces", "--name", "raw", "--no-scrub", "--model", "smollm2")
    assert "stored 2 cases" in raw and "not scrubbed" in raw

    listed = [json.loads(line) for line in run("list", "--json").splitlines()]
    assert [r["name"] for r in listed] == ["empty", "raw", "wrong-answers"]
    made_from = listed[2]["source"]
    assert made_from["kind"] == "traces" and made_from["scrubbed"] is True
    assert made_from["filter"] == {"feedback": "negative", "limit": 100}
    assert listed[2]["description"] == "fix these"

    nothing = strato(
        "datasets", "from-traces", "--name", "x", "--model", "gpt-9", "-c", str(config), data_dir=data
    )
    assert nothing.returncode == 2
    assert "no answered chat or completion requests match --model gpt-9" in nothing.stderr


def test_from_traces_needs_the_admin_key_once_auth_has_run(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    url = f"sqlite:///{tmp_path / 'evals.db'}"
    data = tmp_path / "d"
    record_traces(url)
    keys = KeyStore.open(url)
    keys.record_admin_keys([ADMIN])  # what `strato serve` with an admin key records
    keys.close()

    def run(*args: str, key: str | None) -> subprocess.CompletedProcess[str]:
        env = {"STRATO_ADMIN_KEY": key} if key else {}
        return strato("datasets", *args, "--config", str(config), data_dir=data, env=env)

    refused = run("from-traces", "--name", "bad", key=None)
    assert refused.returncode == 2 and "set STRATO_MASTER_KEY (or STRATO_ADMIN_KEY)" in refused.stderr
    wrong = run("from-traces", "--name", "bad", key="sk-not-it")
    assert wrong.returncode == 2 and "not the one" in wrong.stderr
    made = run("from-traces", "--name", "ok", key=ADMIN)
    assert made.returncode == 0 and "stored 2 cases" in made.stdout
    # A data set made from traces holds what callers sent: showing or exporting it needs the key too.
    hidden = run("show", "ok", key=None)
    assert hidden.returncode == 2 and "STRATO_MASTER_KEY" in hidden.stderr
    assert "<EMAIL_ADDRESS_1>" in run("show", "ok", "--json", key=ADMIN).stdout
