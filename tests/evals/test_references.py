"""Reference answers from a file of their own, joined to cases by id (MT-Bench's GPT-4 answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strato.evals.files import DatasetError, load_file
from strato.evals.references import attach_references
from tests.evals.test_datasets import MT_BENCH, QUALITY, shared


def test_mt_bench_gpt4_answers_fill_the_questions_without_a_reference() -> None:
    cases, _ = load_file(shared(MT_BENCH))
    answers = shared(QUALITY / "mt_bench_reference_gpt4.jsonl")
    gpt4 = {row["question_id"]: row["choices"][0]["turns"][0] for row in map(json.loads, answers.open())}
    joined, matched, errors = attach_references(cases, answers)
    assert errors == []
    by_id = {c.metadata["question_id"]: c for c in joined}
    before = {c.metadata["question_id"]: c for c in cases}
    filled = [qid for qid in gpt4 if before[qid].expected is None]
    assert matched == len(filled) >= 1
    for qid in filled:
        assert by_id[qid].expected == gpt4[qid]
    for qid, case in before.items():  # a question's own reference is kept; the rest are untouched
        if case.expected is not None or qid not in gpt4:
            assert by_id[qid].expected == case.expected
    assert [c.position for c in joined] == [c.position for c in cases]


def test_reference_rows_in_other_shapes_and_bad_rows_by_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps({"id": i, "question": f"q{i}"}) for i in range(4)) + "\n")
    references = tmp_path / "r.jsonl"
    references.write_text(
        json.dumps({"id": 0, "answer": "a0"})
        + "\n{not json\n"
        + json.dumps({"id": 1, "reference": ["a1", "alt"]})
        + "\n"
        + json.dumps({"answer": "no id"})
        + "\n"
        + json.dumps({"id": 3, "comment": "no answer"})
        + "\n"
    )
    cases, _ = load_file(questions)
    joined, matched, errors = attach_references(cases, references)
    assert matched == 2
    assert [c.expected for c in joined] == ["a0", "a1", None, None]
    assert [(e.line, e.message.split(":")[0]) for e in errors] == [
        (2, "not valid JSON"),
        (4, "no id"),
        (5, "no answer"),
    ]


def test_references_must_be_json_lines(tmp_path: Path) -> None:
    cases, _ = load_file(shared(MT_BENCH))
    with pytest.raises(DatasetError, match=r"references are read from \.jsonl or \.json files"):
        attach_references(cases, tmp_path / "refs.csv")
