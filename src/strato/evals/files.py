"""Data set files: JSONL (or .json: one object per line, or one array of objects) and CSV in, JSONL
and CSV out.

Rows come in the shapes people already have: strato's own (`input`, `expected`, `metadata`), chat
rows (`messages` + `expected`/`ideal`/`answer`), GSM8K (`question` + `answer`), prompt/completion
pairs and MT-Bench questions (`turns`, with `reference` answers). A malformed row is reported with
its line number and the others are still loaded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.errors import InvalidRequest
from strato.evals.types import Case

ROLES = ("system", "user", "assistant", "tool")
# Where a row's reference answer may be, in the order they are looked for.
EXPECTED_KEYS = ("expected", "ideal", "answer", "completion")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
SUFFIXES = (*JSON_SUFFIXES, ".csv")
# CSV columns with a meaning of their own; any other column goes to the case's metadata.
CSV_INPUT_COLUMNS = ("input", "messages", "question", "prompt")


class DatasetError(InvalidRequest):
    """A data set cannot be read, written or stored as asked."""

    code = "invalid_dataset"


class NoValidRows(DatasetError):
    """A file none of whose rows could be loaded; `errors` says why for each."""

    def __init__(self, message: str, errors: list[RowError]) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # 1-based line of the file where the row starts
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class BadRow(ValueError):
    """Why one row cannot be a case (the message a user sees next to the line number)."""


def load_file(path: Path) -> tuple[list[Case], list[RowError]]:
    """The cases in a `.jsonl`/`.json` (one object per line; a `.json` file may also be one array
    of objects) or `.csv` file (a header row, then one case a record), numbered from 0, and the rows
    that could not be read. Raises `DatasetError` when the file cannot be read and
    `NoValidRows` when no row could be loaded."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix or '(none)'!r}; use .jsonl, .json or .csv")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows = _csv_rows(data) if suffix == ".csv" else json_rows(data, array=suffix == ".json")
    cases: list[Case] = []
    errors: list[RowError] = []
    for line, row in rows:
        try:
            if isinstance(row, BadRow):
                raise row
            cases.append(case_from_row(row, len(cases)))
        except BadRow as exc:
            errors.append(RowError(line, str(exc)))
    if not cases:
        detail = f": {errors[0]}" if errors else ""
        what = f"none of its {len(errors)} rows could be loaded" if errors else "it has no rows"
        raise NoValidRows(f"{path}: {what}{detail}", errors)
    return cases, errors


def export_file(cases: Sequence[Case], path: Path) -> int:
    """Write cases as JSONL (`.jsonl`, `.json`) or CSV (`.csv`), in a form `load_file` reads back
    to the same cases (CSV keeps text: a number expected comes back as its text). Returns the
    number of rows written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(f"{path}: unknown file type {suffix or '(none)'!r}; use .jsonl, .json or .csv")
    text = _csv_text(cases) if suffix == ".csv" else "".join(_jsonl_line(c) for c in cases)
    try:
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise DatasetError(f"cannot write {path}: {exc.strerror or exc}") from None
    return len(cases)


def case_from_row(row: Any, position: int) -> Case:
    """One row (a parsed JSON object, or a CSV record) as a case; `BadRow` says what is wrong."""
    if not isinstance(row, dict):
        raise BadRow(f"expected a JSON object, got {_kind(row)}")
    rest = dict(row)
    expected: Any = None
    metadata = _metadata(rest.pop("metadata", None))
    trace_id = rest.pop("trace_id", None)
    if trace_id is not None and not isinstance(trace_id, str):
        raise BadRow(f"trace_id must be text, got {_kind(trace_id)}")
    rest.pop("position", None)  # positions are renumbered
    if "input" in rest:
        case_input = _input(rest.pop("input"))
    elif "messages" in rest:
        case_input = {"messages": _messages(rest.pop("messages"), "messages")}
    elif "question" in rest:
        case_input = {"messages": [{"role": "user", "content": _text(rest.pop("question"), "question")}]}
    elif "turns" in rest:
        case_input, expected = _mt_bench(rest)
    elif "prompt" in rest:
        case_input = {"prompt": _text(rest.pop("prompt"), "prompt")}
    else:
        keys = ", ".join(sorted(row)) or "none"
        raise BadRow(f"no input: give input, messages, question, prompt or turns (keys: {keys})")
    if "params" in rest and "params" not in case_input:
        case_input["params"] = _params(rest.pop("params"))
    for key in EXPECTED_KEYS:
        if key in rest:
            expected = rest.pop(key)
            break
    for key, value in rest.items():  # unknown keys are kept, next to the metadata given
        metadata.setdefault(key, value)
    return Case(position, case_input, expected, metadata, trace_id)


def _input(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"messages": [{"role": "user", "content": value}]}
    if isinstance(value, list):
        return {"messages": _messages(value, "input")}
    if not isinstance(value, dict):
        raise BadRow(f"input must be text, a list of messages or an object, got {_kind(value)}")
    rest = dict(value)
    params = _params(rest.pop("params", {}))
    if "messages" in rest:
        found: dict[str, Any] = {"messages": _messages(rest.pop("messages"), "input.messages")}
    elif "prompt" in rest:
        found = {"prompt": _text(rest.pop("prompt"), "input.prompt")}
    else:
        raise BadRow("input has neither messages nor prompt")
    params.update(rest)  # a trace's request shape: sampling parameters beside the messages
    if params:
        found["params"] = params
    return found


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRow(f"{where} must be a non-empty list of messages, got {_kind(value)}")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise BadRow(f"{where}[{i}] must be an object with role and content, got {_kind(message)}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise BadRow(f"{where}[{i}].role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise BadRow(f"{where}[{i}].content must be text, got {_kind(content)}")
        kept = {"role": role, "content": content}
        if isinstance(message.get("name"), str):
            kept["name"] = message["name"]
        messages.append(kept)
    return messages


def _mt_bench(row: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """MT-Bench's question format: the first turn as the user message (all turns kept in the
    metadata), the first reference answer as expected when there is one."""
    turns = row.pop("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
        raise BadRow(f"turns must be a non-empty list of texts, got {_kind(turns)}")
    expected = None
    reference = row.pop("reference", None)
    if isinstance(reference, list) and reference:
        expected = reference[0]
    elif isinstance(reference, str):
        expected = reference
    row.setdefault("turns", turns)  # back into the row: it goes to the metadata
    if reference is not None:
        row.setdefault("reference", reference)
    return {"messages": [{"role": "user", "content": turns[0]}]}, expected


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRow(f"params must be an object, got {_kind(value)}")
    return dict(value)


def _metadata(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRow(f"metadata must be an object, got {_kind(value)}")
    return dict(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRow(f"{where} must be non-empty text, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "empty text" if not value else "text"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def json_rows(data: bytes, *, array: bool) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or the BadRow) for each non-blank line; for a `.json` file that
    is one JSON array, each item, numbered by the line it starts on."""
    if array and data.lstrip()[:1] == b"[":
        items = _array_items(data)
        if items is not None:
            yield from items
            return
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, BadRow(f"not UTF-8 text (byte {exc.start + 1})")
            continue
        line = line.lstrip("\ufeff").strip()
        if not line:
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, BadRow(f"not valid JSON: {exc.msg} at column {exc.colno}")


def _array_items(data: bytes) -> list[tuple[int, Any]] | None:
    try:
        text = data.decode("utf-8-sig")
        if not isinstance(json.loads(text), list):
            return None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None  # not one array: read it line by line, and say which lines are wrong
    decoder, items = json.JSONDecoder(), list[tuple[int, Any]]()
    pos, line, counted = text.index("[") + 1, 1, 0
    while True:
        while text[pos] in " \t\r\n,":
            pos += 1
        if text[pos] == "]":
            return items
        item, end = decoder.raw_decode(text, pos)
        line, counted = line + text.count("\n", counted, pos), pos
        items.append((line, item))
        pos = end


def _csv_rows(data: bytes) -> Iterator[tuple[int, Any]]:
    """(line number, row dict or the BadRow) for each record after the header."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the CSV file is not UTF-8 text (byte {exc.start + 1})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        raise DatasetError(f"the CSV header cannot be read: {exc}") from None
    if not any(h in header for h in CSV_INPUT_COLUMNS):
        raise DatasetError(f"the CSV header needs one of the columns {', '.join(CSV_INPUT_COLUMNS)}")
    line = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, BadRow(f"not valid CSV: {exc}")
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            yield start, BadRow(f"{len(record)} cells where the header has {len(header)}")
            continue
        yield start, _csv_row(dict(zip(header, record, strict=True)))


def _csv_row(record: dict[str, str]) -> dict[str, Any] | BadRow:
    """CSV cells are text; `input`, `messages`, the expected answer (`expected`, `answer`, ...),
    `metadata` and `params` may hold JSON (objects or lists: a cell that reads as a number stays
    text)."""
    row: dict[str, Any] = {k: v for k, v in record.items() if k and v != ""}
    for key in ("input", "metadata", "params", "messages", *EXPECTED_KEYS):
        if key in row:
            row[key] = _json_cell(row[key], strict=key in ("metadata", "params", "messages"))
            if isinstance(row[key], BadRow):
                return BadRow(f"column {key}: {row[key]}")
    return row


def _json_cell(cell: str, *, strict: bool) -> Any:
    stripped = cell.strip()
    if not strict and stripped[:1] == '"' == stripped[-1:] and len(stripped) > 1:
        try:  # a JSON string literal: how export writes text that would read as JSON
            decoded = json.loads(stripped)
        except json.JSONDecodeError:
            return cell
        return decoded if isinstance(decoded, str) else cell
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError as exc:
            if strict:
                return BadRow(f"not valid JSON: {exc.msg} at column {exc.colno}")
    elif strict:
        return BadRow("must be a JSON object or list")
    return cell


def _row_of(case: Case) -> dict[str, Any]:
    row: dict[str, Any] = {"input": case.input}
    if case.expected is not None:
        row["expected"] = case.expected
    if case.metadata:
        row["metadata"] = case.metadata
    if case.trace_id is not None:
        row["trace_id"] = case.trace_id
    return row


def _jsonl_line(case: Case) -> str:
    return json.dumps(_row_of(case), ensure_ascii=False) + "\n"


def _csv_text(cases: Sequence[Case]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["input", "expected", "metadata", "trace_id"])
    for case in cases:
        expected = case.expected
        if expected is not None and not isinstance(expected, str):
            expected = json.dumps(expected, ensure_ascii=False)
        elif isinstance(expected, str) and _reads_as_json(expected):
            expected = json.dumps(expected, ensure_ascii=False)  # text that looks like JSON stays text
        writer.writerow(
            [
                _csv_input(case.input),
                "" if expected is None else expected,
                json.dumps(case.metadata, ensure_ascii=False) if case.metadata else "",
                case.trace_id or "",
            ]
        )
    return out.getvalue()


def _csv_input(case_input: dict[str, Any]) -> str:
    """One user message as its text (what a person writes in a spreadsheet), anything else as JSON."""
    messages = case_input.get("messages")
    if set(case_input) == {"messages"} and isinstance(messages, list) and len(messages) == 1:
        only = messages[0]
        text = only.get("content")
        plain = set(only) == {"role", "content"} and only.get("role") == "user"
        if plain and isinstance(text, str) and text and not _reads_as_json(text):
            return text
    return json.dumps(case_input, ensure_ascii=False)


def _reads_as_json(text: str) -> bool:
    """Whether `load_file` would read this CSV cell as JSON rather than as text."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "[", '"'):
        return False
    try:
        json.loads(stripped)
    except json.JSONDecodeError:
        return False
    return True
