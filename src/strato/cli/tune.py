"""`strato tune`: fine-tune a local model on a data set (a LoRA adapter, trained on this CPU in a
worker process), and list or show the jobs."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Column, Table
from sqlalchemy import Engine

from strato.cli.options import ConfigOption, dataset_ref
from strato.config import Settings, describe_validation_error, load_settings
from strato.errors import StratoError
from strato.evals.datasets import DatasetStore
from strato.evals.targets import GatewayTarget
from strato.runtime import build_runtime
from strato.store.database import open_database
from strato.tune.gate import SCORER, Verdict, gate_job
from strato.tune.jobs import Job, TuneJobs
from strato.tune.options import TuneOptions
from strato.tune.registry import TunedModel, TunedModels

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Fine-tune a local model on a data set: a LoRA adapter, trained on this machine's CPU.",
    no_args_is_help=True,
)
DEFAULTS = TuneOptions()


def _refuse(message: str) -> NoReturn:
    typer.echo(f"strato: error: {message}", err=True)
    raise typer.Exit(2)


def _jobs(settings: Settings) -> TuneJobs:
    return TuneJobs(settings.store.data_dir.expanduser() / "tune")


def _help(field: str) -> str:
    return TuneOptions.model_fields[field].description or ""


@app.command("run")
def run(
    dataset: Annotated[
        str | None, typer.Option(help="The data set to train on: NAME or NAME:VERSION.")
    ] = None,
    base: Annotated[str | None, typer.Option(help="The configured local model to adapt.")] = None,
    name: Annotated[str | None, typer.Option(help="The model name the adapter will be served as.")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume this job from its last checkpoint.")] = None,
    rank: Annotated[int, typer.Option(help=_help("rank"), min=1)] = DEFAULTS.rank,
    alpha: Annotated[int, typer.Option(help=_help("alpha"), min=1)] = DEFAULTS.alpha,
    target_modules: Annotated[str, typer.Option(help=_help("target_modules"))] = ",".join(
        DEFAULTS.target_modules
    ),
    layers_from: Annotated[int, typer.Option(help=_help("layers_from"), min=0)] = DEFAULTS.layers_from,
    epochs: Annotated[float, typer.Option(help=_help("epochs"))] = DEFAULTS.epochs,
    steps: Annotated[int | None, typer.Option(help=_help("steps"), min=1)] = None,
    learning_rate: Annotated[float, typer.Option(help=_help("learning_rate"))] = DEFAULTS.learning_rate,
    batch_size: Annotated[int, typer.Option(help=_help("batch_size"), min=1)] = DEFAULTS.batch_size,
    max_seq_len: Annotated[int, typer.Option(help=_help("max_seq_len"))] = DEFAULTS.max_seq_len,
    held_out: Annotated[float, typer.Option(help=_help("held_out"))] = DEFAULTS.held_out,
    seed: Annotated[int, typer.Option(help=_help("seed"))] = DEFAULTS.seed,
    max_minutes: Annotated[float | None, typer.Option(help=_help("max_minutes"))] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help=_help("checkpoint_every"), min=1)
    ] = DEFAULTS.checkpoint_every,
    config: ConfigOption = None,
) -> None:
    """Train a LoRA adapter for `--base` on `--dataset`'s cases (their expected answers), holding
    out a share for evaluation. Shows loss, tokens/s and the time left; Ctrl-C stops it, and
    `--resume JOB` carries on from the last checkpoint."""
    settings = load_settings(config)
    jobs = _jobs(settings)
    try:
        if resume is not None:
            job = jobs.get(resume)
        else:
            if not (dataset and base and name):
                _refuse("give --dataset, --base and --name (or --resume JOB)")
            options = TuneOptions(
                rank=rank,
                alpha=alpha,
                target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
                layers_from=layers_from,
                epochs=epochs,
                steps=steps,
                learning_rate=learning_rate,
                batch_size=batch_size,
                max_seq_len=max_seq_len,
                held_out=held_out,
                seed=seed,
                max_minutes=max_minutes,
                checkpoint_every=checkpoint_every,
            )
            if any(m.name == name for m in settings.models):
                _refuse(f"a model named {name!r} is configured already; choose another --name")
            store = DatasetStore.open(settings.store.resolved_url())
            try:
                job = jobs.from_dataset(settings, store, *dataset_ref(dataset), base, name, options)
            finally:
                store.close()
    except StratoError as exc:
        _refuse(str(exc))
    except ValidationError as exc:  # an option out of its range
        _refuse(describe_validation_error(exc))
    database = open_database(settings.store.resolved_url())
    registry = TunedModels(database)
    try:
        ended = _train(jobs, job, registry)
        if ended is not None:
            _gate(settings, database, registry, ended)
    finally:
        database.dispose()


def _train(jobs: TuneJobs, job: Job, registry: TunedModels) -> Job | None:
    """Run the job to its end; the finished job, registered (None when it stopped)."""
    console = Console(stderr=True)
    on = f"{job.dataset}:{job.version} ({job.train_size} examples)"
    console.print(f"{job.id}: {job.name} = {job.base} + LoRA, trained on {on}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("loss {task.fields[loss]}  {task.fields[speed]} tok/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("loading the base", total=None, loss="-", speed="-")

        def shown(event: dict[str, Any]) -> None:
            if event["event"] == "loaded":
                progress.update(task, description="training", total=event["steps"], completed=event["step"])
            elif event["event"] == "step":
                speed = f"{event['tokens_per_second']:.0f}"
                progress.update(task, completed=event["step"], loss=f"{event['loss']:.3f}", speed=speed)

        try:
            ended = jobs.run(job, shown)
        except KeyboardInterrupt:
            progress.stop()
            _refuse(f"interrupted; resume with `strato tune run --resume {job.id}`")
    if ended.status == "finished":
        console.print(f"{ended.id}: finished, step {ended.step}/{ended.steps}, loss {ended.loss:.4f}")
        console.print(f"adapter: {ended.adapter}")
        registry.register(ended)
        console.print(
            f"registered: `{ended.name}` is served by gateways on this store from their next start "
            f"(on a running one now: POST /admin/models {{name: {ended.name}, provider: llama_cpp, "
            f"base: {ended.base}, adapter: ...}})"
        )
        return ended
    if ended.status == "stopped":
        console.print(f"{ended.id}: stopped at step {ended.step}/{ended.steps} (--max-minutes)")
        console.print(f"resume with `strato tune run --resume {ended.id}`")
        raise typer.Exit(1)
    _refuse(f"{ended.id} {ended.status}: {ended.error}; `strato tune run --resume {ended.id}` carries on")


def _gate(settings: Settings, database: Engine, registry: TunedModels, job: Job) -> None:
    """The evaluation gate on the job's held-out cases, in this process; the verdict is stored."""
    console = Console(stderr=True)
    console.print(f"gate: {job.base} and {job.name} answer the {len(job.held_out)} held-out cases")
    runtime = build_runtime(settings, database)  # serves the model just registered
    target = GatewayTarget(runtime.gateway, settings.server.master_key, owner=runtime)

    async def gated() -> Verdict:
        try:
            return await gate_job(target, runtime.runs, runtime.datasets, registry, job)
        finally:
            await target.aclose()

    verdict = asyncio.run(gated())
    if verdict.base is not None and verdict.tuned is not None:
        console.print(
            f"{SCORER}: {job.base} {verdict.base:.3f}, {job.name} {verdict.tuned:.3f} ({verdict.cases} cases)"
        )
    console.print(f"{job.name}: {verdict.stage} ({verdict.reason})")
    if verdict.base_run:
        console.print(f"compare again: strato eval compare {verdict.base_run} {verdict.tuned_run}")


def _registered(settings: Settings) -> dict[str, TunedModel]:
    database = open_database(settings.store.resolved_url())
    try:
        return {m.job_id: m for m in TunedModels(database).all()}
    finally:
        database.dispose()


@app.command("list")
def list_jobs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, one object a line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every fine-tuning job, oldest first, with its model's stage once registered (trained, then
    candidate or rejected by the evaluation gate)."""
    settings = load_settings(config)
    jobs, registered = _jobs(settings).all(), _registered(settings)
    if as_json:
        for job in jobs:
            model = registered.get(job.id)
            typer.echo(json.dumps({**asdict(job), "model": None if model is None else asdict(model)}))
        return
    table = Table(
        Column("job", no_wrap=True), "model", "base", "data set", "status", "step", "loss", "created"
    )
    for job in jobs:
        model = registered.get(job.id)
        table.add_row(
            job.id,
            job.name,
            job.base,
            f"{job.dataset}:{job.version}",
            job.status if model is None else model.stage,  # a registered model's: trained, candidate, ...
            f"{job.step}/{job.steps or '?'}",
            "-" if job.loss is None else f"{job.loss:.3f}",
            datetime.fromtimestamp(job.created_at).strftime("%m-%d %H:%M"),
        )
    Console().print(table)


@app.command("show")
def show(job_id: Annotated[str, typer.Argument(help="The job's id.")], config: ConfigOption = None) -> None:
    """One job as JSON: what it was asked, how far it got, where its adapter is, and its model as
    registered, with the evaluation gate's verdict."""
    settings = load_settings(config)
    try:
        job = _jobs(settings).get(job_id)
    except StratoError as exc:
        _refuse(str(exc))
    model = _registered(settings).get(job.id)
    typer.echo(json.dumps({**asdict(job), "model": None if model is None else asdict(model)}, indent=2))
    if job.adapter and not Path(job.adapter).exists():
        typer.echo(f"strato: warning: the adapter file {job.adapter} is gone", err=True)
