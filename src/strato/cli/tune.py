"""`strato tune`: fine-tune a local model on a data set (a LoRA adapter, trained on this CPU in a
worker process), and list or show the jobs."""

from __future__ import annotations

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

from strato.cli.options import ConfigOption, dataset_ref
from strato.config import Settings, describe_validation_error, load_settings
from strato.errors import StratoError
from strato.evals.datasets import DatasetStore
from strato.tune.examples import examples_from_cases, local_base, split
from strato.tune.jobs import Job, TuneJobs
from strato.tune.options import TuneOptions

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
            base_path = local_base(settings, base)
            store = DatasetStore.open(settings.store.resolved_url())
            try:
                found, cases = store.get(*dataset_ref(dataset))
            finally:
                store.close()
            training, kept = split(examples_from_cases(cases, found.name), options.held_out, options.seed)
            job = jobs.create(name, base, base_path, found.name, found.version, training, kept, options)
    except StratoError as exc:
        _refuse(str(exc))
    except ValidationError as exc:  # an option out of its range
        _refuse(describe_validation_error(exc))
    _train(jobs, job)


def _train(jobs: TuneJobs, job: Job) -> None:
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
        console.print(
            f"serve it: add to `models:` {{name: {ended.name}, provider: llama_cpp, base: {ended.base}, "
            f"adapter: {ended.adapter}}}"
        )
        return
    if ended.status == "stopped":
        console.print(f"{ended.id}: stopped at step {ended.step}/{ended.steps} (--max-minutes)")
        console.print(f"resume with `strato tune run --resume {ended.id}`")
        raise typer.Exit(1)
    _refuse(f"{ended.id} {ended.status}: {ended.error}; `strato tune run --resume {ended.id}` carries on")


@app.command("list")
def list_jobs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, one object a line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Every fine-tuning job, oldest first."""
    jobs = _jobs(load_settings(config)).all()
    if as_json:
        for job in jobs:
            typer.echo(json.dumps(asdict(job)))
        return
    table = Table(Column("job", no_wrap=True), "model", "data set", "status", "step", "loss", "created")
    for job in jobs:
        table.add_row(
            job.id,
            f"{job.name} ({job.base})",
            f"{job.dataset}:{job.version}",
            job.status,
            f"{job.step}/{job.steps or '?'}",
            "-" if job.loss is None else f"{job.loss:.4f}",
            datetime.fromtimestamp(job.created_at).strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@app.command("show")
def show(job_id: Annotated[str, typer.Argument(help="The job's id.")], config: ConfigOption = None) -> None:
    """One job as JSON: what it was asked, how far it got, where its adapter is."""
    try:
        job = _jobs(load_settings(config)).get(job_id)
    except StratoError as exc:
        _refuse(str(exc))
    typer.echo(json.dumps(asdict(job), indent=2))
    if job.adapter and not Path(job.adapter).exists():
        typer.echo(f"strato: warning: the adapter file {job.adapter} is gone", err=True)
