from __future__ import annotations

from rich.console import Console
from rich.table import Table

from strato.cli.options import ConfigOption
from strato.config import load_settings
from strato.providers.registry import build_models


def models(config: ConfigOption = None) -> None:
    """List the configured models."""
    settings = load_settings(config)
    table = Table("model", "kind", "provider", "source", "context")
    for info in build_models(settings.models).infos():
        table.add_row(info.name, str(info.kind), info.provider, info.source, str(info.context_length or ""))
    Console().print(table)
