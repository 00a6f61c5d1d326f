"""Evaluation runs and their results, in the same database as the traces (`eval_runs`,
`eval_results`). A result is one case answered once (one sample) and scored; each is committed as
it completes, so an interrupted run keeps everything it finished and resumes from there."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, func, select, update

from strato.errors import StratoError
from strato.store.database import open_database
from strato.store.sql import MIN_PREFIX
from strato.store.tables import eval_results, eval_runs

Status = Literal["running", "complete", "interrupted"]


class RunNotFound(StratoError):
    status = 404
    type = "invalid_request_error"
    code = "run_not_found"


@dataclass(frozen=True, slots=True)
class Run:
    """One model over one data set version. `config` holds what shapes its answers and scores:
    `scorers` (specs), `samples`, `target` ("in-process" or a URL), `params` (overrides of every
    case's sampling parameters), `system` (a system prompt put in every case), `limit` (first N cases)."""

    id: str
    dataset: str
    version: int
    model: str
    config: dict[str, Any]
    samples: int
    started_at: float
    ended_at: float | None = None
    status: Status = "running"


@dataclass(frozen=True, slots=True)
class Result:
    """One case-sample: the answer (or its error), each scorer's value (None: it could not judge)
    and detail (the judge's raw output, the number found, an "error"), the call's latency and cost."""

    run_id: str
    position: int
    sample: int
    output: str | None
    error: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    latency_ms: float | None = None
    cost: float | None = None
    trace_id: str | None = None
    created_at: float = field(default_factory=time.time)


class RunStore:
    """Thread-safe: every call takes its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> RunStore:
        """Connect and apply pending migrations."""
        return cls(open_database(url))

    def create(self, dataset: str, version: int, model: str, config: dict[str, Any], samples: int = 1) -> Run:
        run = Run(uuid.uuid4().hex[:12], dataset, version, model, config, samples, time.time())
        row = {
            "id": run.id,
            "dataset": dataset,
            "version": version,
            "model": model,
            "config": json.dumps(config, ensure_ascii=False),
            "samples": samples,
            "started_at": run.started_at,
            "status": run.status,
        }
        with self.engine.begin() as conn:
            conn.execute(eval_runs.insert(), row)
        return run

    def add_result(self, result: Result) -> None:
        """Store one case-sample (committed at once). Storing the same (position, sample) again
        replaces it."""
        c = eval_results.c
        with self.engine.begin() as conn:
            conn.execute(
                eval_results.delete().where(
                    (c.run_id == result.run_id)
                    & (c.position == result.position)
                    & (c.sample == result.sample)
                )
            )
            conn.execute(eval_results.insert(), _result_row(result))

    def get(self, run_id: str) -> Run:
        """The run with this id or unique id prefix (6 characters or more). Raises `RunNotFound`."""
        with self.engine.connect() as conn:
            row = conn.execute(select(eval_runs).where(eval_runs.c.id == run_id)).first()
            if row is None and len(run_id) >= MIN_PREFIX and run_id.isalnum():
                rows = conn.execute(select(eval_runs).where(eval_runs.c.id.startswith(run_id)).limit(2)).all()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise RunNotFound(f"no evaluation run {run_id!r} (see `strato eval runs`)")
        return _run(row._mapping)

    def runs(self, *, dataset: str | None = None, limit: int = 50) -> list[Run]:
        """Most recent first."""
        stmt = select(eval_runs).order_by(eval_runs.c.started_at.desc(), eval_runs.c.id.desc()).limit(limit)
        if dataset is not None:
            stmt = stmt.where(eval_runs.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [_run(row._mapping) for row in conn.execute(stmt)]

    def results(self, run_id: str) -> list[Result]:
        """A run's results by position, then sample."""
        c = eval_results.c
        stmt = select(eval_results).where(c.run_id == run_id).order_by(c.position, c.sample)
        with self.engine.connect() as conn:
            return [_result(row._mapping) for row in conn.execute(stmt)]

    def done(self, run_id: str) -> set[tuple[int, int]]:
        """The (position, sample) pairs a run has stored: what resuming it skips."""
        c = eval_results.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.position, c.sample).where(c.run_id == run_id))
            return {(int(p), int(s)) for p, s in rows}

    def counts(self, run_ids: list[str]) -> dict[str, int]:
        """How many results each run has stored."""
        c = eval_results.c
        stmt = select(c.run_id, func.count()).where(c.run_id.in_(run_ids)).group_by(c.run_id)
        with self.engine.connect() as conn:
            return {str(run_id): int(n) for run_id, n in conn.execute(stmt)}

    def mark(self, run_id: str, status: Status) -> None:
        """Set a run's status; "complete" and "interrupted" also stamp when it ended."""
        ended = None if status == "running" else time.time()
        with self.engine.begin() as conn:
            conn.execute(
                update(eval_runs).where(eval_runs.c.id == run_id).values(status=status, ended_at=ended)
            )

    def close(self) -> None:
        self.engine.dispose()


def _result_row(r: Result) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "position": r.position,
        "sample": r.sample,
        "output": r.output,
        "error": r.error,
        "scores": json.dumps(r.scores),
        "details": json.dumps(r.details, ensure_ascii=False, default=str) if r.details else None,
        "latency_ms": r.latency_ms,
        "cost": r.cost,
        "trace_id": r.trace_id,
        "created_at": r.created_at,
    }


def _result(row: Any) -> Result:
    return Result(
        run_id=row["run_id"],
        position=row["position"],
        sample=row["sample"],
        output=row["output"],
        error=row["error"],
        scores=json.loads(row["scores"]),
        details=json.loads(row["details"]) if row["details"] else {},
        latency_ms=row["latency_ms"],
        cost=row["cost"],
        trace_id=row["trace_id"],
        created_at=row["created_at"],
    )


def _run(row: Any) -> Run:
    return Run(
        id=row["id"],
        dataset=row["dataset"],
        version=row["version"],
        model=row["model"],
        config=json.loads(row["config"]),
        samples=row["samples"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=row["status"],
    )
