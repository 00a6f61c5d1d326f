"""Fine-tuned models, in the store's database: each a LoRA adapter on a configured local base,
registered when its job finishes and served under its name by every gateway started on the same
database (`strato.runtime` adds them to the model table), until it is removed."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from strato.config import ModelEntry
from strato.providers.registry import ModelTable
from strato.store.tables import tuned_models
from strato.tune.jobs import Job, NameTaken

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TunedModel:
    name: str
    base: str
    adapter: str
    job_id: str
    dataset: str
    version: int
    stage: str  # trained, candidate (passed its evaluation gate), rejected
    created_at: float
    gate: dict[str, Any] | None = None

    def entry(self) -> ModelEntry:
        """The model entry that serves it, as under `models:` in strato.yaml."""
        return ModelEntry.model_validate(
            {"name": self.name, "provider": "llama_cpp", "base": self.base, "adapter": self.adapter}
        )


class TunedModels:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, job: Job) -> TunedModel:
        """Register a finished job's adapter under the job's model name."""
        if job.adapter is None:
            raise ValueError(f"{job.id} has no adapter")
        model = TunedModel(
            job.name, job.base, job.adapter, job.id, job.dataset, job.version, "trained", time.time()
        )
        row = asdict(model)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(tuned_models), row)
        except IntegrityError:
            raise NameTaken(f"a fine-tuned model named {job.name!r} is registered already") from None
        return model

    def judged(self, name: str, stage: str, gate: dict[str, Any]) -> None:
        """Record the evaluation gate's verdict on `name`."""
        with self.engine.begin() as conn:
            conn.execute(
                update(tuned_models)
                .where(tuned_models.c.name == name)
                .values(stage=stage, gate=json.dumps(gate))
            )

    def get(self, name: str) -> TunedModel | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tuned_models).where(tuned_models.c.name == name)).first()
        return None if row is None else _model(row)

    def all(self) -> list[TunedModel]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tuned_models).order_by(tuned_models.c.created_at)).all()
        return [_model(row) for row in rows]

    def remove(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(tuned_models).where(tuned_models.c.name == name)).rowcount)

    def serve(self, models: ModelTable) -> None:
        """Add to `models` the registered models it can serve (`servable`)."""
        taken = set(models.generators) | set(models.embedders)
        for model in self.servable(set(models.shared.engines.specs), taken):
            models.add(model.entry())

    def servable(self, local_bases: set[str], taken: set[str]) -> list[TunedModel]:
        """The registered models a gateway can serve: their base is one of its local models, their
        name is not configured otherwise, their adapter file exists. The others are logged."""
        found = []
        for model in self.all():
            if model.name in taken:
                log.warning("fine-tuned model %r is not served: a configured model has its name", model.name)
            elif model.base not in local_bases:
                log.warning(
                    "fine-tuned model %r is not served: its base %r is not configured", model.name, model.base
                )
            elif not Path(model.adapter).is_file():
                log.warning("fine-tuned model %r is not served: %s is gone", model.name, model.adapter)
            else:
                found.append(model)
        return found


def _model(row: Any) -> TunedModel:
    gate = json.loads(row.gate) if row.gate else None
    return TunedModel(
        row.name, row.base, row.adapter, row.job_id, row.dataset, row.version, row.stage, row.created_at, gate
    )
