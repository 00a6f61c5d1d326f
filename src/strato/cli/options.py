"""Options several verbs share."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to strato.yaml (default: $STRATO_CONFIG, then ./strato.yaml)."),
]

SinceOption = Annotated[
    str | None,
    typer.Option(help="Only requests since: 30m, 24h, 7d, 2w, or a date (2026-01-31). Default: all."),
]


def parse_since(value: str | None) -> float | None:
    """`--since` as seconds since the epoch: a period back from now, or a local date/time."""
    if value is None:
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", value.strip())
    if found:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[found.group(2)]
        return time.time() - float(found.group(1)) * unit
    try:
        return datetime.fromisoformat(value).astimezone().timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: use 30m, 24h, 7d or a date like 2026-01-31", param_hint="--since"
        ) from None


def dataset_ref(text: str) -> tuple[str, int | None]:
    """`name` or `name:version`."""
    name, sep, version = text.rpartition(":")
    if sep and version.isdigit():
        return name, int(version)
    return text, None
