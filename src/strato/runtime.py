"""The composition root: every service strato runs, built once from settings.

One SQL engine (and pool) per database URL, migrated once and shared by every store that lives in
it: traces, keys, the audit log, the spend journal, data sets and evaluation runs. The providers,
guards, cache and writers are built here too, and the request path (`Gateway`) receives them. The
server's routes and the CLI's verbs take what they use from a `Runtime`; nothing reaches through
the gateway for it. `Runtime.aclose` closes what `build_runtime` opened, in the reverse order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from strato.auth import Authority, KeyStore
from strato.auth.audit import AuditLog, AuditWriter
from strato.auth.journal import SpendJournal
from strato.auth.shared import open_limits
from strato.cache.answers import AnswerCache, open_answer_cache
from strato.config import Settings
from strato.evals.datasets import DatasetStore
from strato.evals.runs import RunStore
from strato.gateway import Gateway
from strato.guards.step import GuardSet, build_guards
from strato.observe.anomalies import AnomalyWatch
from strato.observe.metrics import GatewayMetrics
from strato.observe.otel import OtelExport, open_otel_export
from strato.observe.recorder import TraceRecorder
from strato.providers.registry import ModelTable, build_models
from strato.store.database import open_database
from strato.store.sql import SQLStore
from strato.tune.jobs import TuneJobs
from strato.tune.registry import TunedModels
from strato.tune.service import TuneService
from strato.types import Price


@dataclass
class Runtime:
    """What a running strato holds. Each field is built once; `owned` says whether the runtime
    opened the database engine (and so disposes of it) or was lent one."""

    settings: Settings
    database: Engine
    traces: SQLStore
    recorder: TraceRecorder
    audit: AuditWriter
    keys: KeyStore | None
    auth: Authority
    models: ModelTable
    cache: AnswerCache
    guards: GuardSet
    metrics: GatewayMetrics
    watch: AnomalyWatch | None
    otel: OtelExport | None
    gateway: Gateway
    datasets: DatasetStore
    runs: RunStore
    tune: TuneService
    owned: bool = True
    started: int = field(default_factory=lambda: int(time.time()))

    def metrics_text(self) -> bytes:
        """Prometheus exposition, with the local engines' current slots, queues and memory."""
        self.metrics.set_engines(self.models.shared.engines.states())
        return self.metrics.render()

    def start(self) -> None:
        """What a server starts before its first request: the anomaly watch's language model loads
        on a thread of its own, so the first requests do not share the CPU with loading it."""
        if self.watch is not None:
            self.watch.languages.load(0)

    async def aclose(self) -> None:
        """Stop the providers (no new answers), then store every trace and audit entry still
        queued, then let go of the database."""
        try:
            await self.models.aclose()
            await self.cache.aclose()
        finally:
            self.tune.close()  # a running fine-tuning job stops, resumable
            self.guards.close()
            self.auth.close()  # waits for settlements still running, then the spend journal
            if self.watch is not None:
                self.watch.close()
            self.audit.close()
            self.recorder.close()
            if self.otel is not None:
                self.otel.close()  # sends what is still queued (a collector that is down is given up on)
            if self.owned:
                self.database.dispose()


def build_runtime(
    settings: Settings, database: Engine | None = None, clock: Callable[[], float] = time.time
) -> Runtime:
    """Open the database (unless one is lent: `database`, which the caller keeps and disposes),
    build the configured models, guards and cache, and start the writers. `clock`: the time the
    answer cache's TTLs count by (a test's own, to skip ahead without waiting)."""
    owned = database is None
    engine = open_database(settings.store.resolved_url()) if database is None else database
    traces = SQLStore(engine)
    store = settings.store
    recorder = TraceRecorder(traces, flush_interval=store.flush_interval, batch_size=store.batch_size)
    audit = AuditWriter(AuditLog(engine), flush_interval=store.flush_interval)
    try:
        local_price = Price(settings.engine.input_cost, settings.engine.output_cost)
        models = build_models(settings.models, settings.engine.memory_budget_mb, local_price)
        tuned = TunedModels(engine)
        tuned.serve(models)
        cache = open_answer_cache(settings.cache, store.data_dir.expanduser(), models, clock)
        keys = KeyStore(engine) if settings.server.admin_keys() else None
        if keys is not None:
            keys.record_admin_keys(settings.server.admin_keys())  # what the admin CLI checks against
        auth = _authority(settings, keys, engine)
    except BaseException:
        audit.close()
        recorder.close()
        if owned:
            engine.dispose()
        raise
    guards = build_guards(settings.guards, models)  # loads the injection classifier
    metrics = GatewayMetrics()
    watch = AnomalyWatch(settings.observe, metrics) if settings.observe.anomalies.enabled else None
    otel = open_otel_export(settings.observe.otel)  # None unless an OTLP endpoint is configured
    gateway = Gateway(
        models, recorder, metrics, cache, auth, guards, audit, watch, otel, settings.observe.durable
    )
    datasets, runs = DatasetStore(engine), RunStore(engine)
    jobs = TuneJobs(store.data_dir.expanduser() / "tune")
    tune = TuneService(settings, jobs, datasets, tuned, runs, gateway)
    return Runtime(
        settings,
        engine,
        traces,
        recorder,
        audit,
        keys,
        auth,
        models,
        cache,
        guards,
        metrics,
        watch,
        otel,
        gateway,
        datasets,
        runs,
        tune,
        owned,
    )


def _authority(settings: Settings, keys: KeyStore | None, engine: Engine) -> Authority:
    """Keys, budgets and limits are on when a master key is set: budgeted requests' holds and
    settlements go to the spend journal, in the same database."""
    master = settings.server.master_key
    if not master or keys is None:
        return Authority(master, keys)
    limits = settings.limits
    journal = SpendJournal(engine, limits.hold_seconds, limits.journal_fsync)
    journal.prune(time.time())
    limiter, ledger = open_limits(settings, keys, journal)
    return Authority(master, keys, limiter, ledger, journal=journal)
