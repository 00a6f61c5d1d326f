"""Reference answers kept in a file of their own, joined to a data set's cases by an id.

MT-Bench ships its GPT-4 reference answers (`reference_answer/gpt-4.jsonl`, FastChat's answer
format: `{"question_id", "choices": [{"turns": [...]}]}`) apart from its questions, as many
benchmarks do. `strato datasets import QUESTIONS --references ANSWERS` gives each case whose id
matches a reference its expected answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from strato.evals.files import EXPECTED_KEYS, JSON_SUFFIXES, BadRow, DatasetError, RowError, json_rows
from strato.evals.types import Case

ID_KEYS = ("question_id", "id")  # where a reference row's id is, and the case metadata it matches


def attach_references(cases: Sequence[Case], path: Path) -> tuple[list[Case], int, list[RowError]]:
    """The cases, those whose metadata id (`question_id` or `id`) has a reference in `path` now
    expecting it (a case's own expected answer is kept); how many got one; the unreadable rows."""
    references, errors = read_references(path)
    joined: list[Case] = []
    matched = 0
    for case in cases:
        key = next((str(case.metadata[k]) for k in ID_KEYS if k in case.metadata), None)
        if key is not None and key in references and case.expected is None:
            case = dataclasses.replace(case, expected=references[key])
            matched += 1
        joined.append(case)
    return joined, matched, errors


def read_references(path: Path) -> tuple[dict[str, Any], list[RowError]]:
    """Reference answer by id, from a JSONL (or .json) file; bad rows by line number."""
    path = Path(path)
    if path.suffix.lower() not in JSON_SUFFIXES:
        raise DatasetError(f"{path}: references are read from .jsonl or .json files")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    references: dict[str, Any] = {}
    errors: list[RowError] = []
    for line, row in json_rows(data, array=path.suffix.lower() == ".json"):
        try:
            if isinstance(row, BadRow):
                raise row
            key, answer = _reference(row)
            references[key] = answer
        except BadRow as exc:
            errors.append(RowError(line, str(exc)))
    return references, errors


def _reference(row: Any) -> tuple[str, Any]:
    if not isinstance(row, dict):
        raise BadRow(f"a reference must be a JSON object, got {type(row).__name__}")
    key = next((row[k] for k in ID_KEYS if k in row), None)
    if key is None:
        raise BadRow("no id: give question_id or id")
    choices = row.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        turns = choices[0].get("turns")
        if isinstance(turns, list) and turns and isinstance(turns[0], str):
            return str(key), turns[0]  # FastChat's answer format: the first turn's answer
    for name in ("reference", *EXPECTED_KEYS):
        value = row.get(name)
        if isinstance(value, list) and value:
            return str(key), value[0]
        if value is not None:
            return str(key), value
    raise BadRow("no answer: give choices[0].turns, reference, expected, ideal, answer or completion")
