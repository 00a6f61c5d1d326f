from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from strato.cli.options import ConfigOption
from strato.config import load_settings
from strato.providers.registry import build_models
from strato.store.database import open_database
from strato.tune.registry import TunedModels


def models(config: ConfigOption = None) -> None:
    """List the configured models, and the fine-tuned ones registered in the store."""
    settings = load_settings(config)
    table = Table("model", "kind", "provider", "source", "context")
    built = build_models(settings.models, settings.engine.memory_budget_mb)
    database = open_database(settings.store.resolved_url())
    try:
        TunedModels(database).serve(built)
    finally:
        database.dispose()
    try:
        for info in built.infos():
            context = str(info.context_length or "")
            table.add_row(info.name, str(info.kind), info.provider, info.source, context)
    finally:
        asyncio.run(built.aclose())  # remote providers hold HTTP clients; nothing was loaded
    Console().print(table)
