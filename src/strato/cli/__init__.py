"""`strato`: thin verbs over the same code paths the server uses."""

from __future__ import annotations

import sys

import typer

from strato.cli import audit, chat, datasets, evals, keys, models, router, serve, traces, tune
from strato.config import ConfigError
from strato.errors import StratoError

app = typer.Typer(
    rich_markup_mode="markdown",
    name="strato",
    help="Self-hosted LLM gateway: serve local and remote models behind one OpenAI-compatible API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("chat")(chat.chat)
app.command("models")(models.models)
app.add_typer(traces.app, name="traces")
app.add_typer(router.app, name="router")
app.add_typer(keys.app, name="keys")
app.add_typer(datasets.app, name="datasets")
app.add_typer(evals.app, name="eval")
app.add_typer(tune.app, name="tune")
app.command("audit")(audit.audit)


def main() -> None:
    try:
        app()
    except (ConfigError, StratoError) as exc:
        print(f"strato: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
