"""Evaluation data sets on real SQLite and PostgreSQL: versions, files in the shapes people have
(the real GSM8K and MT-Bench files among them), and cases made from recorded traces with their
feedback, anomalies and PII scrubbed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from strato.errors import StratoError
from strato.evals.datasets import (
    DatasetError,
    DatasetNotFound,
    DatasetStore,
    NoValidRows,
    RowError,
    cases_from_traces,
    export_file,
    load_file,
)
from strato.evals.types import Case
from strato.store import Store, open_store
from strato.types import Endpoint, Score, Trace, TraceQuery
from tests.postgres import postgres_url

__all__ = ["postgres_url"]

QUALITY = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "quality"
GSM8K = QUALITY / "gsm8k_test.jsonl"
MT_BENCH = QUALITY / "mt_bench_questions.jsonl"


def shared(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is not here (../shared/datasets)")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'strato.db'}"
    found: str = request.getfixturevalue("postgres_url")
    return found


@pytest.fixture
def datasets(url: str) -> Iterator[DatasetStore]:
    store = DatasetStore.open(url)
    yield store
    store.close()


def user(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


# --- versions in the store ---------------------------------------------------------------------


def test_versions_are_numbered_and_never_change(datasets: DatasetStore) -> None:
    first = [Case(7, user("2+2?"), "4", {"topic": "sums"}), Case(3, user("Capital of France?"), ["Paris"])]
    v1 = datasets.create("maths-v.1_x", first, source={"kind": "file", "file": "a.jsonl"}, description="d")
    assert (v1.name, v1.version, v1.size, v1.description) == ("maths-v.1_x", 1, 2, "d")
    second = [Case(0, {"prompt": "Once upon", "params": {"temperature": 0}}, {"ok": True}, trace_id="t-1")]
    v2 = datasets.create("maths-v.1_x", second, source={"kind": "traces"})
    assert v2.version == 2

    latest, cases = datasets.get("maths-v.1_x")
    assert latest == v2 and cases == [Case(0, second[0].input, {"ok": True}, {}, "t-1")]
    old, cases = datasets.get("maths-v.1_x", 1)
    assert old.version == 1 and old.source == {"kind": "file", "file": "a.jsonl"}
    # Positions are renumbered 0..n-1 in the order given; expected keeps its JSON type.
    assert cases == [
        Case(0, user("2+2?"), "4", {"topic": "sums"}),
        Case(1, user("Capital of France?"), ["Paris"]),
    ]
    datasets.create("other", [Case(0, user("hi"))], source={})
    assert [(v.name, v.version) for v in datasets.versions()] == [
        ("maths-v.1_x", 1),
        ("maths-v.1_x", 2),
        ("other", 1),
    ]
    assert [v.version for v in datasets.versions("maths-v.1_x")] == [1, 2]
    assert datasets.versions("nope") == []


def test_missing_data_sets_and_versions_say_what_exists(datasets: DatasetStore) -> None:
    with pytest.raises(DatasetNotFound, match=r"no data set 'gsm8k' \(data sets: none yet\)"):
        datasets.get("gsm8k")
    datasets.create("mt-bench", [Case(0, user("hi"))], source={})
    datasets.create("mt-bench", [Case(0, user("hi"))], source={})
    with pytest.raises(DatasetNotFound, match=r"no data set 'gsm8k' \(data sets: mt-bench\)") as missing:
        datasets.get("gsm8k")
    assert missing.value.status == 404 and missing.value.code == "dataset_not_found"
    assert isinstance(missing.value, StratoError)
    with pytest.raises(DatasetNotFound, match=r"'mt-bench' has no version 3 \(versions: 1, 2\)"):
        datasets.get("mt-bench", 3)


def test_names_and_empty_data_sets_are_refused(datasets: DatasetStore) -> None:
    for bad in ("", "has space", "slash/name", "x" * 129, "ünï"):
        with pytest.raises(DatasetError, match="use 1-128 letters"):
            datasets.create(bad, [Case(0, user("hi"))], source={})
    with pytest.raises(DatasetError, match="no cases"):
        datasets.create("empty", [], source={})
    assert datasets.versions() == []


def test_a_large_data_set_is_one_version(datasets: DatasetStore) -> None:
    cases = [Case(i, user(f"question {i}"), str(i)) for i in range(2500)]
    datasets.create("big", cases, source={})
    found, stored = datasets.get("big")
    assert found.size == len(stored) == 2500 and stored[1234] == cases[1234]


# --- files ---------------------------------------------------------------------------------------


def test_the_real_gsm8k_file_loads_whole() -> None:
    cases, errors = load_file(shared(GSM8K))
    assert errors == [] and len(cases) == 1319
    first = cases[0]
    assert first.position == 0 and first.input["messages"][0]["role"] == "user"
    assert first.input["messages"][0]["content"].startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.expected.endswith("#### 18") and first.metadata == {}
    assert [c.position for c in cases[-3:]] == [1316, 1317, 1318]


def test_the_real_mt_bench_file_uses_the_first_turn_and_the_reference() -> None:
    cases, errors = load_file(shared(MT_BENCH))
    assert errors == [] and len(cases) == 80
    by_id = {c.metadata["question_id"]: c for c in cases}
    writing = by_id[81]
    assert writing.input == user(writing.metadata["turns"][0]) and writing.expected is None
    assert writing.metadata["category"] == "writing" and len(writing.metadata["turns"]) == 2
    reasoning = by_id[101]
    assert reasoning.expected == "You are in second place."
    assert reasoning.metadata["reference"][1] == "Uncertain."
    assert sum(1 for c in cases if c.expected is not None) == sum(
        1 for c in cases if "reference" in c.metadata
    )


def test_every_row_shape_and_bad_rows_by_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"input": "What is 2+2?", "expected": "4", "metadata": {"tag": "sum"}, "source": "me"}),
        json.dumps(
            {"input": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
        ),
        "",  # blank lines are not rows
        json.dumps({"input": {"messages": [{"role": "user", "content": "JSON?"}], "temperature": 0}}),
        json.dumps({"input": {"prompt": "Once upon a", "params": {"max_tokens": 5}}, "expected": 3}),
        json.dumps({"messages": [{"role": "user", "content": "Hello"}], "ideal": "Hi!"}),
        json.dumps({"question": "How many?", "answer": "2 + 2 = 4\n#### 4"}),
        json.dumps({"prompt": "The sky is", "completion": " blue"}),
        json.dumps({"question_id": 9, "turns": ["First?", "Second?"], "reference": ["One", "Two"]}),
        "{not json",
        json.dumps({"expected": "no input here"}),
        json.dumps(["a", "list"]),
        json.dumps({"input": 42}),
        json.dumps({"messages": [{"role": "robot", "content": "beep"}]}),
        json.dumps({"messages": [{"role": "user", "content": None}]}),
        json.dumps({"question": "ok?", "metadata": "not an object"}),
        json.dumps({"turns": []}),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cases, errors = load_file(path)

    assert [c.position for c in cases] == list(range(8))
    assert cases[0] == Case(0, user("What is 2+2?"), "4", {"tag": "sum", "source": "me"})
    assert [m["role"] for m in cases[1].input["messages"]] == ["system", "user"]
    assert cases[2].input == {**user("JSON?"), "params": {"temperature": 0}}
    assert cases[3].input == {"prompt": "Once upon a", "params": {"max_tokens": 5}} and cases[3].expected == 3
    assert cases[4].expected == "Hi!"
    assert cases[5].input == user("How many?") and cases[5].expected.endswith("#### 4")
    assert cases[6] == Case(6, {"prompt": "The sky is"}, " blue")
    assert cases[7].input == user("First?") and cases[7].expected == "One"
    assert cases[7].metadata["question_id"] == 9

    assert [e.line for e in errors] == [10, 11, 12, 13, 14, 15, 16, 17]
    messages = [e.message for e in errors]
    assert messages[0].startswith("not valid JSON")
    assert messages[1].startswith("no input: give input, messages, question, prompt or turns")
    assert messages[2] == "expected a JSON object, got a list"
    assert "input must be text, a list of messages or an object" in messages[3]
    assert "messages[0].role must be one of system, user, assistant, tool" in messages[4]
    assert "messages[0].content must be text, got null" in messages[5]
    assert "metadata must be an object" in messages[6]
    assert "turns must be a non-empty list" in messages[7]
    assert str(errors[0]).startswith("line 10: not valid JSON")


def test_a_json_array_file_reports_items_by_their_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    rows = [{"question": "One?", "answer": "1"}, {"answer": "no question"}, {"input": "Three?"}]
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    cases, errors = load_file(path)
    assert [c.input for c in cases] == [user("One?"), user("Three?")]
    assert [e.line for e in errors] == [6] and errors[0].message.startswith("no input")
    # The same rows, one a line, in a .json file: read as JSONL.
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert [e.line for e in load_file(path)[1]] == [2]


def test_a_file_without_valid_rows_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\nnot json\n')
    with pytest.raises(NoValidRows, match="none of its 2 rows could be loaded: line 1: no input") as raised:
        load_file(bad)
    assert raised.value.errors == [
        RowError(1, raised.value.errors[0].message),
        RowError(2, raised.value.errors[1].message),
    ]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(NoValidRows, match="it has no rows"):
        load_file(empty)
    with pytest.raises(DatasetError, match=r"unknown file type '\.txt'"):
        load_file(tmp_path / "cases.txt")
    with pytest.raises(DatasetError, match="cannot read"):
        load_file(tmp_path / "missing.jsonl")


def test_csv_with_json_cells_extra_columns_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(
        "question,answer,difficulty\n"
        "What is 2+2?,4,easy\n"
        '"A question\nover two lines",multi,hard\n'
        ",no question,hard\n"
        "too,many,cells,here\n"
        'Last one,"{""a"": 1}",easy\n',
        encoding="utf-8",
    )
    cases, errors = load_file(path)
    assert [c.input for c in cases] == [
        user("What is 2+2?"),
        user("A question\nover two lines"),
        user("Last one"),
    ]
    assert cases[0].expected == "4" and cases[0].metadata == {"difficulty": "easy"}
    assert cases[2].expected == {"a": 1}
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (5, "no input"),
        (6, "4 cells where the header has 3"),
    ]

    no_input = tmp_path / "no_input.csv"
    no_input.write_text("expected,notes\n4,x\n")
    with pytest.raises(DatasetError, match="needs one of the columns input, messages, question, prompt"):
        load_file(no_input)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_round_trips(tmp_path: Path, suffix: str) -> None:
    cases = [
        Case(0, user("What is 2+2?"), "4", {"tag": "sum"}),
        Case(
            1,
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": 'Hi, "you"'},
                ]
            },
        ),
        Case(2, {"prompt": "Once upon a", "params": {"temperature": 0.2, "stop": ["\n"]}}, {"json": [1, 2]}),
        Case(3, user('{"looks": "like JSON"}'), '["text", "that reads as JSON"]', trace_id="abc123"),
        Case(4, user("ünïcode ✓ and a, comma\nand a newline"), "multi\nline, answer", {"n": 1.5}),
        Case(5, user('"quoted"'), '"quoted answer"'),
    ]
    path = tmp_path / f"out{suffix}"
    assert export_file(cases, path) == len(cases)
    loaded, errors = load_file(path)
    assert errors == [] and loaded == cases

    gsm8k, _ = load_file(shared(GSM8K))
    export_file(gsm8k, path)
    assert load_file(path) == (gsm8k, [])


def test_export_refuses_an_unknown_file_type(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"use \.jsonl, \.json or \.csv"):
        export_file([Case(0, user("hi"))], tmp_path / "out.parquet")


# --- cases from traces ---------------------------------------------------------------------------

EMAIL = "ada.lovelace@example.com"
PHONE = "+1 415-555-0132"
SECRET = "sk-proj-Ab3dEf9hIjKlMnOpQrStUvWxYz0123456789AbCdEfGh"


def trace(trace_id: str, at: float, text: str, answer: str | None, **fields: object) -> Trace:
    request = {"messages": [{"role": "user", "content": text}], "temperature": 0.0, "max_tokens": 64}
    request.update(fields.pop("request", {}))  # type: ignore[call-overload]
    base: dict[str, object] = dict(
        id=trace_id,
        started_at=at,
        endpoint=Endpoint.CHAT,
        requested_model="smollm2",
        request=request,
        completion=answer,
        status=200,
    )
    base.update(fields)
    return Trace(**base)  # type: ignore[arg-type]


@pytest.fixture
def traces(url: str) -> Iterator[Store]:
    store = open_store(url)
    store.record(
        [
            trace("t1", 100.0, f"Email {EMAIL} about the refund.", "Sure, I will email them.", user="u1"),
            trace("t2", 200.0, "What is 17 * 3?", "17 * 3 = 41", anomalies=[]),
            trace(
                "t3",
                300.0,
                f"My key is {SECRET}, call me on {PHONE} or mail {EMAIL}",
                "",
                anomalies=["EMPTY_ANSWER"],
                request={"response_format": {"type": "json_object", "schema": None, "name": None}},
            ),
            trace("t4", 400.0, "Failed one", None, status=502, error="upstream failed"),
            Trace("t5", 500.0, Endpoint.EMBEDDING, "minilm", {"input": ["embed me"]}, status=200),
            trace("t6", 600.0, "Tell me a joke", "Why did the chicken...", requested_model="other"),
            Trace(
                "t7",
                700.0,
                Endpoint.COMPLETION,
                "gemma",
                {"prompt": f"Contact: {EMAIL}\nName:", "temperature": 1.0, "stop": []},
                completion=" Ada",
                status=200,
            ),
        ]
    )
    store.add_scores(
        [
            Score(
                "t2", "feedback", 0.0, "user", created_at=1.0, label="wrong_answer", correction="17 * 3 = 51"
            ),
            Score("t1", "feedback", 0.6, "user", created_at=1.0, label="fine"),
            Score("t1", "feedback", 1.0, "user", created_at=2.0, label="helpful"),  # the latest word wins
            Score("t3", "feedback", 0.2, "user", created_at=1.0, correction=f"Reply to {EMAIL} in JSON"),
        ]
    )
    yield store
    store.close()


def test_cases_from_traces_take_corrections_params_and_anomalies(traces: Store) -> None:
    cases = cases_from_traces(traces, TraceQuery(limit=50), scrub=False)
    # Newest first; the failed request and the embedding request are not cases.
    assert [c.trace_id for c in cases] == ["t7", "t6", "t3", "t2", "t1"]
    assert [c.position for c in cases] == [0, 1, 2, 3, 4]
    by_id = {c.trace_id: c for c in cases}

    wrong = by_id["t2"]
    assert wrong.input == {**user("What is 17 * 3?"), "params": {"temperature": 0.0, "max_tokens": 64}}
    assert wrong.expected == "17 * 3 = 51"  # the correction, not the model's wrong answer
    assert wrong.metadata == {
        "model": "smollm2",
        "started_at": 200.0,
        "feedback_score": 0.0,
        "feedback_label": "wrong_answer",
        "expected_from": "correction",
    }
    assert by_id["t1"].expected == "Sure, I will email them."
    assert (
        by_id["t1"].metadata["feedback_score"] == 1.0 and by_id["t1"].metadata["feedback_label"] == "helpful"
    )
    assert by_id["t6"].metadata == {"model": "other", "started_at": 600.0}
    empty = by_id["t3"]
    assert empty.metadata["anomalies"] == ["EMPTY_ANSWER"]
    assert empty.input["params"]["response_format"]["type"] == "json_object"
    assert by_id["t7"].input == {"prompt": f"Contact: {EMAIL}\nName:", "params": {"temperature": 1.0}}
    assert by_id["t7"].expected == " Ada"


def test_trace_filters_select_the_cases(traces: Store) -> None:
    def ids(**query: object) -> list[str | None]:
        return [c.trace_id for c in cases_from_traces(traces, TraceQuery(**query), scrub=False)]  # type: ignore[arg-type]

    assert ids(feedback="negative") == ["t3", "t2"]
    assert ids(feedback="positive") == ["t1"]
    assert ids(anomaly="EMPTY_ANSWER") == ["t3"] == ids(anomaly="any")
    assert ids(model="smollm2") == ["t3", "t2", "t1"]
    assert ids(since=150.0, until=650.0) == ["t6", "t3", "t2"]
    assert ids(search="refund") == ["t1"]
    assert ids(limit=2) == ["t7", "t6"]
    # The limit counts cases: failed and embedding requests in between do not use it up.
    assert ids(limit=3, until=650.0) == ["t6", "t3", "t2"]
    assert ids(model="nobody") == []


def test_pii_and_secrets_are_scrubbed_with_placeholders(traces: Store) -> None:
    cases = {c.trace_id: c for c in cases_from_traces(traces, TraceQuery(limit=50))}
    leaky = cases["t3"]
    question = leaky.input["messages"][0]["content"]
    assert SECRET not in question and PHONE not in question and EMAIL not in question
    assert "<SECRET_OPENAI_KEY_1>" in question and "<PHONE_NUMBER_1>" in question
    assert "<EMAIL_ADDRESS_1>" in question
    # The same value gets the same placeholder in the question and in the expected answer.
    assert leaky.expected == "Reply to <EMAIL_ADDRESS_1> in JSON"
    assert leaky.metadata["scrubbed"] == 3
    assert cases["t1"].input["messages"][0]["content"] == "Email <EMAIL_ADDRESS_1> about the refund."
    assert cases["t7"].input["prompt"] == "Contact: <EMAIL_ADDRESS_1>\nName:"
    assert cases["t2"].input["messages"][0]["content"] == "What is 17 * 3?"  # arithmetic is not PII
    assert cases["t2"].metadata["scrubbed"] == 0
    everything = json.dumps([c.input for c in cases.values()] + [c.expected for c in cases.values()])
    assert EMAIL not in everything and SECRET not in everything
