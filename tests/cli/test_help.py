"""Every verb's `--help`, through typer's CliRunner (no subprocess): it renders, and a command's
summary is one line in its group's listing (on a terminal wide enough), not broken where the
docstring was wrapped."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from strato.cli import app


def commands() -> list[tuple[list[str], Any]]:
    """Every command and group under `strato`, with the words that name it."""
    found: list[tuple[list[str], Any]] = []

    def walk(path: list[str], command: Any) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():  # a group's
            walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    return found


def plain(text: str) -> str:
    """Rendered help as running text: no box drawing, no code marks, one space between words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text.replace("`", "")).split())


VERBS = commands()


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in VERBS}
    assert {"serve", "chat", "keys create", "eval run", "datasets from-traces", "audit"} <= names


@pytest.mark.parametrize(("path", "command"), VERBS, ids=[" ".join(p) or "strato" for p, _ in VERBS])
def test_help_renders_and_summaries_are_not_broken(path: list[str], command: Any) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    lines = [plain(line) for line in result.output.splitlines()]
    for name, sub in getattr(command, "commands", {}).items():
        summary = plain(inspect.cleandoc(sub.help or "").split("\n\n")[0])
        listed = f"{name} {summary}"
        assert any(listed in line for line in lines), f"the summary of {name!r} is broken up or cut"
