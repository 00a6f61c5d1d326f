"""Scorers for structured answers: valid JSON, and JSON valid against a JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from jsonschema import exceptions as schema_errors  # type: ignore[import-untyped]
from jsonschema import validators

from strato.evals.scorers import Options, ScorerError, unanswered
from strato.evals.types import Answer, Case, Judgement, Target

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)


class NotJson(ValueError):
    pass


def parse_answer(text: str) -> Any:
    """The JSON an answer holds: the whole text, else the first ```json fenced block that parses."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    for block in _FENCE.findall(text):
        try:
            return json.loads(block)
        except json.JSONDecodeError:
            continue
    raise NotJson(problem)


class JsonValid:
    """1 when the answer is JSON (the whole text, or inside a ```json fence)."""

    name = "json"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        Options(self.name, params).done()

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer, needs_expected=False)) is not None:
            return skip
        try:
            parse_answer(answer.text or "")
        except NotJson as exc:
            return Judgement(0.0, {"problem": str(exc)})
        return Judgement(1.0)


class JsonSchemaValid:
    """1 when the answer is JSON valid against a schema: `schema=` (a file, or inline JSON), else the
    case's `metadata["schema"]`, else the JSON schema its request asked for (`response_format`).
    A 0 comes with the first validation error in the detail."""

    name = "json_schema"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        options = Options(self.name, params)
        given = options.text("schema")
        options.done()
        self.schema: dict[str, Any] | None = None
        if given is not None:
            self.schema = _checked(_read_schema(given), "schema=")

    async def score(self, case: Case, answer: Answer) -> Judgement:
        if (skip := unanswered(self.name, case, answer, needs_expected=False)) is not None:
            return skip
        schema = self.schema
        if schema is None:
            try:
                schema = _case_schema(case)
            except ScorerError as exc:
                return Judgement(None, error=exc.message)
        if schema is None:
            return Judgement(
                None, error="json_schema: no schema: give schema= or put one in the case's metadata.schema"
            )
        try:
            document = parse_answer(answer.text or "")
        except NotJson as exc:
            return Judgement(0.0, {"problem": str(exc)})
        validator = validators.validator_for(schema)(schema)
        errors = list(validator.iter_errors(document))
        if not errors:
            return Judgement(1.0)
        first = schema_errors.best_match(errors)
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        return Judgement(0.0, {"problem": f"{where}: {first.message}", "errors": len(errors)})


def _read_schema(given: str) -> Any:
    text = given.strip()
    if not text.startswith(("{", "[")):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScorerError(f"scorer json_schema: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScorerError(f"scorer json_schema: the schema is not JSON: {exc.msg}") from None


def _checked(schema: Any, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise ScorerError(f"scorer json_schema: {where} must be a JSON object")
    try:
        validators.validator_for(schema).check_schema(schema)
    except schema_errors.SchemaError as exc:
        raise ScorerError(f"scorer json_schema: {where} is not a valid JSON Schema: {exc.message}") from None
    return schema


def _case_schema(case: Case) -> dict[str, Any] | None:
    found = case.metadata.get("schema")
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except json.JSONDecodeError:
            raise ScorerError("json_schema: the case's metadata.schema is not JSON") from None
    if found is not None:
        return _checked(found, "the case's metadata.schema")
    fmt = case.input.get("params", {}).get("response_format")
    if isinstance(fmt, dict):
        nested = fmt.get("json_schema")
        schema = nested.get("schema") if isinstance(nested, dict) else fmt.get("schema")
        if schema is not None:
            return _checked(schema, "the case's response_format schema")
    return None
