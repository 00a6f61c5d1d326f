"""Building scorers from specs such as `exact`, `regex:pattern='^\\d+$'` or `judge:model=gpt-4o`.

Built-in scorers register through the `strato.scorers` entry point group, as a plugin's do; a spec
may also name any importable factory, `package.module:ClassName[:key=value,...]`. A factory takes
`(params: dict[str, str], target: Target)` and returns a `Scorer`.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from strato.errors import InvalidRequest
from strato.evals.types import Answer, Case, Judgement, Scorer, Target

ENTRY_POINT_GROUP = "strato.scorers"

# The built-ins, as their entry points name them: used when the installed metadata is stale.
BUILTINS: dict[str, str] = {
    "exact": "strato.evals.match:ExactMatch",
    "normalised": "strato.evals.match:NormalisedMatch",
    "contains": "strato.evals.match:Contains",
    "regex": "strato.evals.match:RegexMatch",
    "numeric": "strato.evals.match:NumericMatch",
    "json": "strato.evals.structured:JsonValid",
    "json_schema": "strato.evals.structured:JsonSchemaValid",
    "embedding": "strato.evals.similarity:EmbeddingSimilarity",
    "rouge_l": "strato.evals.similarity:RougeL",
    "judge": "strato.evals.judge:LLMJudge",
    "latency": "strato.evals.measures:Latency",
    "cost": "strato.evals.measures:Cost",
}
ALIASES = {"normalized": "normalised", "rouge": "rouge_l", "rougel": "rouge_l", "llm_judge": "judge"}

ScorerFactory = Callable[[dict[str, str], Target], Scorer]

_PLUGIN = re.compile(r"(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)(?::(?P<params>.*))?", re.S)
_KEY = re.compile(r"\s*([A-Za-z_][\w.-]*)\s*=")


class ScorerError(InvalidRequest):
    """A scorer spec that cannot be built; the message names the scorer and the problem."""

    code = "invalid_scorer"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="scorer")


@dataclass(frozen=True, slots=True)
class Spec:
    """A parsed spec: the scorer's name (or `module:attr` of a plugin) and its options."""

    name: str
    params: dict[str, str]
    plugin: bool = False


def parse_spec(spec: str) -> Spec:
    """`name`, `name:key=value,key=value` or `package.module:ClassName[:key=value,...]`. Values may
    be quoted ('...' or "..."; a backslash escapes the quote); an unquoted value runs up to the next
    `,key=` so that `regex:pattern=^\\d{1,3}$` needs no quotes."""
    text = spec.strip()
    if not text:
        raise ScorerError("an empty scorer spec: give a name such as exact, numeric or judge:model=...")
    plugin = _PLUGIN.fullmatch(text)
    if plugin and ("." in plugin.group("module") or plugin.group("module") not in _known_names()):
        target = f"{plugin.group('module')}:{plugin.group('attr')}"
        return Spec(target, _parse_params(plugin.group("params") or "", target), plugin=True)
    name, _, rest = text.partition(":")
    name = name.strip()
    return Spec(ALIASES.get(name.lower(), name), _parse_params(rest, name))


def _parse_params(text: str, scorer: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        key = _KEY.match(text, pos)
        if key is None:
            raise ScorerError(f"scorer {scorer}: expected key=value at {text[pos:]!r}")
        name, pos = key.group(1), key.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] in "'\"":
            value, pos = _quoted(text, pos, scorer)
            while pos < len(text) and text[pos] == " ":
                pos += 1
            if pos < len(text) and text[pos] != ",":
                raise ScorerError(f"scorer {scorer}: expected ',' after the quoted value of {name}")
        else:
            end = pos
            while end < len(text) and not (text[end] == "," and _KEY.match(text, end + 1)):
                end += 1
            value, pos = text[pos:end].strip(), end
        if name in params:
            raise ScorerError(f"scorer {scorer}: {name} is given twice")
        params[name] = value
        pos += 1  # the comma
    return params


def _quoted(text: str, pos: int, scorer: str) -> tuple[str, int]:
    quote, out, i = text[pos], [], pos + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
            continue
        if char == quote:
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise ScorerError(f"scorer {scorer}: a quoted value has no closing {quote}")


def build_scorer(spec: str, target: Target) -> Scorer:
    """The scorer a spec names, ready to score. Raises `ScorerError` for an unknown name, a bad
    option or a plugin that cannot be imported. Every scorer takes `name=` (the column its values
    appear under; default: the scorer's name)."""
    parsed = parse_spec(spec)
    params = dict(parsed.params)
    column = params.pop("name", None)
    factory = _plugin(parsed.name) if parsed.plugin else _factory(parsed.name)
    try:
        scorer = factory(params, target)
    except ScorerError:
        raise
    except (TypeError, ValueError, OSError) as exc:
        raise ScorerError(f"scorer {parsed.name}: {exc}") from None
    if not isinstance(getattr(scorer, "name", None), str) or not callable(getattr(scorer, "score", None)):
        raise ScorerError(f"scorer {parsed.name}: the factory did not return a scorer (name and score)")
    if column:
        return Renamed(scorer, column)
    return scorer


def known_scorers() -> list[str]:
    """Every scorer name a spec may use: the built-ins and the installed plugins."""
    return sorted(_known_names())


def _known_names() -> set[str]:
    return set(BUILTINS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _factory(name: str) -> ScorerFactory:
    """The entry point's factory; for a built-in, the table's when the installed metadata is stale
    (no entry point yet, or one naming what has moved since)."""
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    try:
        if found:
            try:
                loaded: ScorerFactory = found[0].load()
                return loaded
            except (ImportError, AttributeError):
                if name not in BUILTINS:
                    raise
        if name in BUILTINS:
            return _import(BUILTINS[name], name)
    except (ImportError, AttributeError) as exc:
        raise ScorerError(f"scorer {name}: cannot be loaded: {exc}") from None
    known = ", ".join(known_scorers())
    raise ScorerError(f"unknown scorer {name!r}; known scorers: {known} (or package.module:ClassName)")


def _plugin(target: str) -> ScorerFactory:
    try:
        return _import(target, target)
    except ImportError as exc:
        raise ScorerError(f"scorer {target}: cannot be imported: {exc}") from None


def _import(target: str, name: str) -> ScorerFactory:
    module_name, _, attr = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        if not hasattr(found, part):
            raise ScorerError(f"scorer {name}: {module_name} has no {attr}")
        found = getattr(found, part)
    if not callable(found):
        raise ScorerError(f"scorer {name}: {target} is not a class or a function")
    factory: ScorerFactory = found
    return factory


class Renamed:
    """A scorer whose values appear under another name (`name=` in the spec)."""

    def __init__(self, inner: Scorer, name: str) -> None:
        self.inner = inner
        self.name = name

    async def score(self, case: Case, answer: Answer) -> Judgement:
        return await self.inner.score(case, answer)


class Options:
    """A scorer's options, read one by one; `done()` refuses any left unread (a typo)."""

    def __init__(self, scorer: str, params: Mapping[str, str]) -> None:
        self.scorer = scorer
        self.params = dict(params)
        self.read: list[str] = []

    def text(self, key: str, default: str | None = None) -> str | None:
        self.read.append(key)
        return self.params.pop(key, default)

    def required(self, key: str, what: str) -> str:
        value = self.text(key)
        if not value:
            raise ScorerError(f"scorer {self.scorer}: {key}= is required ({what})")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.text(key)
        if value is None:
            return float(default)
        try:
            return float(value)
        except ValueError:
            raise ScorerError(f"scorer {self.scorer}: {key}={value!r} is not a number") from None

    def flag(self, key: str, default: bool) -> bool:
        value = self.text(key)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ScorerError(f"scorer {self.scorer}: {key}={value!r}: use true or false")

    def done(self) -> None:
        if self.params:
            unknown = ", ".join(sorted(self.params))
            allowed = ", ".join([*self.read, "name"])
            raise ScorerError(f"scorer {self.scorer}: unknown option {unknown} (options: {allowed})")


def as_text(value: Any) -> str:
    """A reference answer as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def references(expected: Any) -> list[str]:
    """The acceptable answers: a list of texts or numbers means any of them, anything else is one."""
    if isinstance(expected, list) and expected and all(isinstance(e, str | int | float) for e in expected):
        return [as_text(e) for e in expected]
    return [as_text(expected)]


def unanswered(name: str, case: Case, answer: Answer, *, needs_expected: bool = True) -> Judgement | None:
    """The judgement when there is nothing to judge: the model failed, or the case has no reference
    answer for a scorer that needs one. None: go on and judge."""
    if answer.error is not None:
        return Judgement(None, error=answer.error)
    if answer.text is None:
        return Judgement(None, error="no answer")
    if needs_expected and case.expected is None:
        return Judgement(None, error=f"{name}: the case has no expected answer")
    return None
