"""`strato router train` and `strato router report`: fit a router's classifier on scored traces,
and show what a router decided and what that saved."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from strato.cli.options import ConfigOption, SinceOption, parse_since
from strato.config import ConfigError, ModelEntry, Settings, load_settings
from strato.providers.registry import ModelTable, build_models
from strato.routing.learned import DEFAULT_EMBEDDER
from strato.routing.report import RouteReport, summarize, target_price
from strato.routing.router import RouterOptions
from strato.routing.training import ALL, Evaluation, Labelled, Targets, Trained, learn, read_scored
from strato.store import open_store
from strato.types import Price, TraceQuery

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Train and inspect routers (cheap or strong model per request).",
    no_args_is_help=True,
)

RouterName = Annotated[str, typer.Option("--router", "-r", help="The router's model name in the config.")]


@app.command("train")
def train_router(
    router: RouterName,
    score: Annotated[str, typer.Option(help="The score name that judges answers.")] = "quality",
    cutoff: Annotated[
        float, typer.Option(min=0, max=1, help="A cheap answer scoring below this needed the strong model.")
    ] = 0.5,
    out: Annotated[
        Path | None, typer.Option(help="Where to write the model (default: learned.model_path).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Fit the router's classifier on logged traces and their scores; print its held-out accuracy
    and how quality trades against cost at several thresholds."""
    settings = load_settings(config)
    entry, options = _router(settings, router)
    learned = options.learned
    embedder = learned.embedder if learned else DEFAULT_EMBEDDER
    threshold = learned.threshold if learned else 0.5
    path = out or (learned.model_path if learned else settings.store.data_dir / f"router-{router}.npz")
    targets = Targets(router, options.cheap, options.strong)
    store = open_store(settings.store.resolved_url())
    try:
        traces, scores = read_scored(store, targets, score)
    finally:
        store.close()

    async def run(table: ModelTable) -> Trained:
        try:
            return await learn(
                traces,
                scores,
                targets,
                table.shared,
                embedder=embedder,
                cutoff=cutoff,
                threshold=threshold,
                meta={"score": score},
            )
        finally:
            await table.aclose()

    trained = asyncio.run(run(_models(settings)))
    console = Console()
    _print_labels(console, trained.labelled, score, cutoff)
    console.print(f"embedded them with {embedder} in {trained.embed_seconds:.1f}s")
    _print_evaluation(console, trained.evaluation, threshold, trained.prices)
    trained.classifier.save(path)
    console.print(f"wrote {path} (refit on all {len(trained.labelled.examples)} prompts)")
    if learned is None or learned.model_path.expanduser() != path.expanduser():
        console.print(f"use it: learned: {{model_path: {path}, threshold: {threshold}}} under {entry.name!r}")


@app.command("report")
def report_router(
    router: RouterName,
    since: SinceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    config: ConfigOption = None,
) -> None:
    """The router's decisions from its traces: share sent to the strong target, share by reason,
    decision time, and the estimated cost saved against sending everything to the strong target."""
    settings = load_settings(config)
    _, options = _router(settings, router)
    store = open_store(settings.store.resolved_url())
    try:
        traces = store.traces(TraceQuery(limit=ALL, model=router, since=parse_since(since)))
    finally:
        store.close()
    table = _models(settings)
    try:
        strong_price = target_price(table.shared, options.strong)
        result = summarize(traces, router, options.strong, strong_price, table.price)
    finally:
        asyncio.run(table.aclose())
    if as_json:
        typer.echo(json.dumps(_report_dict(result, options.strong)))
        return
    _print_report(result, options, strong_price)


def _router(settings: Settings, name: str) -> tuple[ModelEntry, RouterOptions]:
    routers = [e for e in settings.models if e.provider == "router"]
    entry = next((e for e in routers if e.name == name), None)
    if entry is None:
        known = ", ".join(e.name for e in routers) or "none"
        raise ConfigError(f"no router named {name!r} in the configuration (routers: {known})")
    return entry, entry.parse_options(RouterOptions)


def _models(settings: Settings) -> ModelTable:
    """The configured models but the routers (whose classifier may not exist yet); nothing loads."""
    local = Price(settings.engine.input_cost, settings.engine.output_cost)
    entries = [e for e in settings.models if e.provider != "router"]
    return build_models(entries, settings.engine.memory_budget_mb, local)


def _print_labels(console: Console, labelled: Labelled, score: str, cutoff: float) -> None:
    need = sum(e.need_strong for e in labelled.examples)
    console.print(
        f"{labelled.scored_traces} traces scored {score!r} -> {len(labelled.examples)} prompts: "
        f"{need} needed the strong target, {len(labelled.examples) - need} were fine on the cheap one "
        f"(cheap score >= {cutoff}, or not below the strong one's)"
        + (
            f"; {labelled.strong_only} answered only by the strong target (no label)"
            if labelled.strong_only
            else ""
        )
    )


def _print_evaluation(
    console: Console, ev: Evaluation, threshold: float, prices: tuple[Price | None, Price | None]
) -> None:
    auc = "-" if ev.auc is None else f"{ev.auc:.3f}"
    console.print(
        f"held out {ev.held_out} prompts (trained on {ev.train}): accuracy {ev.accuracy:.3f} at "
        f"threshold {threshold}, AUC {auc}; quality all cheap {ev.all_cheap_quality:.3f}, "
        f"all strong {ev.all_strong_quality:.3f}"
    )
    table = Table(
        "threshold", "to strong", "needed caught", "quality", "cost vs all strong", box=box.SIMPLE_HEAD
    )
    for row in ev.trade_offs:
        mark = " *" if abs(row.threshold - threshold) < 1e-9 else ""
        table.add_row(
            f"{row.threshold:.1f}{mark}",
            f"{row.to_strong:.0%}",
            "-" if row.caught is None else f"{row.caught:.0%}",
            f"{row.quality:.3f}",
            "-" if row.cost is None else f"{row.cost:.0%}",
        )
    console.print(table)
    notes = ["send to strong when P(strong needed) >= threshold; * the configured one"]
    notes.append("quality counts strong answers never scored as 1.0")
    if None in prices:
        notes.append("cost needs both targets' prices (input_cost/output_cost)")
    console.print("; ".join(notes))


def _print_report(result: RouteReport, options: RouterOptions, strong_price: Price | None) -> None:
    console = Console()
    n = result.requests
    if n == 0:
        console.print(f"router {result.router}: no routed requests recorded")
        return
    console.print(
        f"router {result.router}: {n} requests, {result.to_strong / n:.1%} to strong ({options.strong}), "
        f"{1 - result.to_strong / n:.1%} to cheap ({options.cheap})"
    )
    table = Table("reason", "requests", "share", "to strong", box=box.SIMPLE_HEAD)
    for reason, count in result.reasons.most_common():
        table.add_row(reason, str(count), f"{count / n:.1%}", str(result.reasons_to_strong[reason]))
    console.print(table)
    console.print(
        f"decision time p50 {result.decision_p50_ms or 0:.3f} ms, p99 {result.decision_p99_ms or 0:.3f} ms"
    )
    if result.all_strong_cost is None or result.saved is None:
        console.print(f"cost ${result.cost:.6f}; no price for {options.strong!r}, so no savings estimate")
        return
    share = result.saved / result.all_strong_cost if result.all_strong_cost else 0.0
    unpriced = f" ({result.unpriced} requests without a price left out)" if result.unpriced else ""
    console.print(
        f"cost ${result.cost:.6f} vs ${result.all_strong_cost:.6f} all to strong: "
        f"saved ${result.saved:.6f} ({share:.1%}){unpriced}"
    )


def _report_dict(result: RouteReport, strong: str) -> dict[str, object]:
    return {
        "router": result.router,
        "requests": result.requests,
        "to_strong": result.to_strong,
        "strong": strong,
        "reasons": dict(result.reasons),
        "reasons_to_strong": dict(result.reasons_to_strong),
        "targets": dict(result.targets),
        "decision_p50_ms": result.decision_p50_ms,
        "decision_p99_ms": result.decision_p99_ms,
        "cost": result.cost,
        "all_strong_cost": result.all_strong_cost,
        "saved": result.saved,
        "unpriced": result.unpriced,
    }
