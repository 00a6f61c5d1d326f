"""Options several verbs share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Path to strato.yaml (default: $STRATO_CONFIG, then ./strato.yaml)."),
]
