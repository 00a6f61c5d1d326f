"""Every setting, section or field, says what it is: the descriptions are what a user reads in the
OpenAPI schema of the admin API (a model entry) and in errors that name a setting."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from strato.config import ModelEntry, Settings


def undescribed(model: type[BaseModel], prefix: str = "", seen: set[type] | None = None) -> list[str]:
    """Dotted names of the fields of `model`, and of every section below it, with no description."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    missing: list[str] = []
    for name, field in model.model_fields.items():
        if not (field.description or "").strip():
            missing.append(prefix + name)
        pending, inner = [field.annotation], []
        while pending:  # the models inside list[...], dict[str, ...], X | None
            annotation = pending.pop()
            inner.append(annotation)
            pending.extend(typing.get_args(annotation))
        for kind in inner:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                missing += undescribed(kind, f"{prefix}{name}.", seen)
    return missing


def test_every_setting_has_a_description() -> None:
    assert undescribed(Settings) == []


def test_every_model_entry_field_has_a_description() -> None:
    assert undescribed(ModelEntry, "models.") == []


def test_the_check_sees_a_missing_description() -> None:
    class Inner(BaseModel):
        bare: int = 0

    class Outer(BaseModel):
        inner: Inner | None = None

    assert undescribed(Outer) == ["inner", "inner.bare"]
