"""Evaluation data sets: versioned lists of cases in the store's database, made from files or from
recorded traces. A version never changes once written; writing a data set again adds a version."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from strato.errors import StratoError
from strato.evals.files import DatasetError, NoValidRows, RowError, export_file, load_file
from strato.evals.scrub import Scrubber
from strato.evals.types import Case, DatasetVersion
from strato.guards.redact import Placeholders
from strato.store import Store
from strato.store.database import open_database
from strato.store.sql import FEEDBACK
from strato.store.tables import dataset_items, datasets
from strato.types import Endpoint, Score, Trace, TraceQuery

__all__ = [
    "DatasetError",
    "DatasetNotFound",
    "DatasetStore",
    "NoValidRows",
    "RowError",
    "cases_from_traces",
    "export_file",
    "load_file",
]

NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")
# The request fields of a trace that shape the answer, kept as the case's params.
PARAMS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "top_k",
    "min_p",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
)
ITEM_BATCH = 1000  # rows per INSERT: PostgreSQL takes at most 65,535 parameters in one statement


class DatasetNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "dataset_not_found"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise DatasetError(
            f"data set name {name!r}: use 1-128 letters, digits, '-', '_' or '.'", param="name"
        )
    return name


class DatasetStore:
    """The `datasets` and `dataset_items` tables, in the same database as the traces. Thread-safe:
    every call takes its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> DatasetStore:
        """Connect and apply pending migrations."""
        return cls(open_database(url))

    def create(
        self,
        name: str,
        cases: Sequence[Case],
        *,
        source: dict[str, Any],
        description: str | None = None,
    ) -> DatasetVersion:
        """Write `cases` as the next version of `name` (positions renumbered 0..n-1), in one
        transaction. Two writers racing for the same version: the loser takes the next one."""
        check_name(name)
        if not cases:
            raise DatasetError(f"data set {name!r}: no cases to store")
        for attempt in range(5):
            try:
                return self._insert(name, cases, source, description)
            except IntegrityError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _insert(
        self, name: str, cases: Sequence[Case], source: dict[str, Any], description: str | None
    ) -> DatasetVersion:
        now = time.time()
        with self.engine.begin() as conn:
            latest = conn.execute(
                select(func.max(datasets.c.version)).where(datasets.c.name == name)
            ).scalar_one()
            version = DatasetVersion(name, (latest or 0) + 1, now, len(cases), dict(source), description)
            conn.execute(
                datasets.insert(),
                {
                    "name": name,
                    "version": version.version,
                    "created_at": now,
                    "source": json.dumps(source, ensure_ascii=False),
                    "description": description,
                    "size": len(cases),
                },
            )
            rows = [_item_row(name, version.version, i, case) for i, case in enumerate(cases)]
            for start in range(0, len(rows), ITEM_BATCH):
                conn.execute(dataset_items.insert(), rows[start : start + ITEM_BATCH])
        return version

    def get(self, name: str, version: int | None = None) -> tuple[DatasetVersion, list[Case]]:
        """A version of a data set (the latest when `version` is None) and its cases in order."""
        stmt = select(datasets).where(datasets.c.name == name)
        if version is None:
            stmt = stmt.order_by(datasets.c.version.desc()).limit(1)
        else:
            stmt = stmt.where(datasets.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
            if row is None:
                raise DatasetNotFound(self._missing(conn, name, version), param="dataset")
            found = _version(row._mapping)
            items = conn.execute(
                select(dataset_items)
                .where(dataset_items.c.dataset == name, dataset_items.c.version == found.version)
                .order_by(dataset_items.c.position)
            )
            return found, [_case(item._mapping) for item in items]

    def _missing(self, conn: Any, name: str, version: int | None) -> str:
        versions = list(
            conn.execute(
                select(datasets.c.version).where(datasets.c.name == name).order_by(datasets.c.version)
            ).scalars()
        )
        if versions:
            listed = ", ".join(str(v) for v in versions)
            return f"data set {name!r} has no version {version} (versions: {listed})"
        names = list(conn.execute(select(datasets.c.name).distinct().order_by(datasets.c.name)).scalars())
        shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        return f"no data set {name!r} (data sets: {shown or 'none yet'})"

    def versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Every version (of one data set, or of all), by name then version."""
        stmt = select(datasets).order_by(datasets.c.name, datasets.c.version)
        if name is not None:
            stmt = stmt.where(datasets.c.name == name)
        with self.engine.connect() as conn:
            return [_version(row._mapping) for row in conn.execute(stmt)]

    def close(self) -> None:
        self.engine.dispose()


def _item_row(name: str, version: int, position: int, case: Case) -> dict[str, Any]:
    return {
        "dataset": name,
        "version": version,
        "position": position,
        "input": json.dumps(case.input, ensure_ascii=False),
        "expected": None if case.expected is None else json.dumps(case.expected, ensure_ascii=False),
        "metadata": json.dumps(case.metadata, ensure_ascii=False) if case.metadata else None,
        "trace_id": case.trace_id,
    }


def _case(row: Any) -> Case:
    return Case(
        position=row["position"],
        input=json.loads(row["input"]),
        expected=None if row["expected"] is None else json.loads(row["expected"]),
        metadata=json.loads(row["metadata"]) if row["metadata"] else {},
        trace_id=row["trace_id"],
    )


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        name=row["name"],
        version=row["version"],
        created_at=row["created_at"],
        size=row["size"],
        source=json.loads(row["source"]) if row["source"] else {},
        description=row["description"],
    )


def cases_from_traces(
    store: Store, query: TraceQuery, *, scrub: bool = True, scrubber: Scrubber | None = None
) -> list[Case]:
    """Cases from the successful chat and completion traces that match `query` (newest first, at
    most `query.limit`): the request's messages or prompt with its sampling parameters as input,
    the feedback's correction (else the recorded answer) as expected. With `scrub`, PII and secrets
    in the input and the expected answer become placeholders (`scrubber`: the guards' scanners with
    the configured threshold and NER pipeline; default: the pattern recognisers)."""
    found = _answered_traces(store, query)
    feedback: dict[str, Score] = {}
    if found:
        for score in store.scores(name=FEEDBACK, trace_ids=[t.id for t in found]):
            feedback[score.trace_id] = score  # oldest first: the latest word wins
    cleaner = (scrubber or Scrubber()) if scrub else None
    cases: list[Case] = []
    for trace in found:
        case = _case_of(trace, feedback.get(trace.id), len(cases))
        cases.append(_scrubbed(case, cleaner) if cleaner is not None else case)
    return cases


def _answered_traces(store: Store, query: TraceQuery) -> list[Trace]:
    """Matching traces with a status below 400, an answer, and a chat or completion request, paging
    past the others so that `query.limit` counts only these."""
    kept: list[Trace] = []
    cursor: tuple[float, str] | None = None
    while len(kept) < query.limit:
        page = store.traces(query, statuses=(0, 400), older_than=cursor)
        kept += [t for t in page if t.endpoint in (Endpoint.CHAT, Endpoint.COMPLETION) and _asked(t)]
        if len(page) < query.limit:
            break
        cursor = (page[-1].started_at, page[-1].id)
    return kept[: query.limit]


def _asked(trace: Trace) -> bool:
    messages = trace.request.get("messages")
    has_input = bool(messages) if messages is not None else isinstance(trace.request.get("prompt"), str)
    return has_input and trace.completion is not None


def _case_of(trace: Trace, feedback: Score | None, position: int) -> Case:
    request = trace.request
    if request.get("messages") is not None:
        case_input: dict[str, Any] = {
            "messages": [
                {"role": m.get("role", "user"), "content": str(m.get("content") or "")}
                for m in request["messages"]
            ]
        }
    else:
        case_input = {"prompt": request["prompt"]}
    params = {k: request[k] for k in PARAMS if request.get(k) not in (None, [])}
    if params:
        case_input["params"] = params
    metadata: dict[str, Any] = {"model": trace.requested_model, "started_at": trace.started_at}
    expected: Any = trace.completion
    if feedback is not None:
        metadata["feedback_score"] = feedback.value
        if feedback.label:
            metadata["feedback_label"] = feedback.label
        if feedback.correction:
            expected = feedback.correction
            metadata["expected_from"] = "correction"
    if trace.anomalies:
        metadata["anomalies"] = list(trace.anomalies)
    return Case(position, case_input, expected, metadata, trace.id)


def _scrubbed(case: Case, scrubber: Scrubber) -> Case:
    """The case with PII and secrets replaced; one set of placeholders per case, so a value keeps
    its placeholder between the question and the answer."""
    placeholders = Placeholders()
    case_input = dict(case.input)
    if "messages" in case_input:
        case_input["messages"] = [
            {**m, "content": scrubber.scrub(m["content"], placeholders)} for m in case_input["messages"]
        ]
    else:
        case_input["prompt"] = scrubber.scrub(case_input["prompt"], placeholders)
    expected = case.expected
    if isinstance(expected, str):
        expected = scrubber.scrub(expected, placeholders)
    metadata = {**case.metadata, "scrubbed": len(placeholders)}
    return Case(case.position, case_input, expected, metadata, case.trace_id)
