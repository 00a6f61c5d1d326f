"""The built-in scorers, built from specs as a user writes them: true and false cases for each, the
numeric scorer on the real GSM8K answers, the judge against a real HTTP upstream and once against
the real embedded SmolLM2, embedding similarity with the real MiniLM, and plugins."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest

import strato.evals.scorers as scorers_module
from strato.config import Settings
from strato.errors import StratoError
from strato.evals.datasets import load_file
from strato.evals.judge import parse_score
from strato.evals.scorers import BUILTINS, ENTRY_POINT_GROUP, ScorerError, build_scorer, parse_spec
from strato.evals.types import Answer, Case, Judgement, Target
from strato.gateway import CallContext, Gateway
from strato.runtime import build_runtime
from strato.types import EmbeddingRequest, GenerationRequest, Message, SamplingParams
from tests.evals.test_datasets import GSM8K, shared
from tests.support.upstream import Upstream


class HTTPUpstream:
    """A `Target` that calls an OpenAI-compatible server over HTTP (here the tests' upstream, whose
    behaviour the model name picks: `say:<text>` answers exactly that text, `fail` fails)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        body = {"model": model, "messages": case_input["messages"], **case_input.get("params", {})}
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{self.base_url}/chat/completions", json=body)
        latency = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            message = response.json()["error"]["message"]
            return Answer(None, latency_ms=latency, error=f"{response.status_code} upstream_error: {message}")
        data = response.json()
        return Answer(data["choices"][0]["message"]["content"], latency_ms=latency, cost=0.0)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{self.base_url}/embeddings", json={"model": model, "input": texts})
        response.raise_for_status()
        return [row["embedding"] for row in response.json()["data"]]


class InProcess:
    """A `Target` over a gateway built in this process (the embedded SmolLM2 and MiniLM)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        params = case_input.get("params", {})
        request = GenerationRequest(
            model=model,
            params=SamplingParams(
                temperature=params.get("temperature", 1.0), max_tokens=params.get("max_tokens")
            ),
            messages=tuple(Message(m["role"], m["content"]) for m in case_input["messages"]),
        )
        started = time.perf_counter()
        try:
            result = await self.gateway.generate(request, CallContext())
        except StratoError as exc:
            return Answer(None, error=f"{exc.status} {exc.code}: {exc.message}")
        latency = (time.perf_counter() - started) * 1000
        usage = result.usage
        return Answer(result.text, latency, None, usage.prompt_tokens, usage.completion_tokens)

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        result = await self.gateway.embed(EmbeddingRequest(model, tuple(texts)), CallContext())
        return result.vectors


class Unreachable:
    """A `Target` for scorers that never call one."""

    async def complete(self, model: str, case_input: dict[str, Any]) -> Answer:
        raise AssertionError("this scorer should not call a model")

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        raise AssertionError("this scorer should not call a model")


NOWHERE: Target = Unreachable()


@pytest.fixture(scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcess]:
    """The gateway with the default settings: SmolLM2-135M-Instruct and all-MiniLM-L6-v2."""
    settings = Settings.model_validate({"store": {"data_dir": str(tmp_path_factory.mktemp("embedded"))}})
    runtime = build_runtime(settings)
    yield InProcess(runtime.gateway)
    await runtime.aclose()


def case(expected: Any = None, question: str = "What is the capital of France?", **metadata: Any) -> Case:
    return Case(0, {"messages": [{"role": "user", "content": question}]}, expected, metadata)


async def score(spec: str, expected: Any, text: str | None, target: Target = NOWHERE, **kw: Any) -> Judgement:
    scorer = build_scorer(spec, target)
    return await scorer.score(case(expected, **kw), Answer(text, latency_ms=12.5, cost=0.0003))


async def value(spec: str, expected: Any, text: str, target: Target = NOWHERE, **kw: Any) -> float | None:
    return (await score(spec, expected, text, target, **kw)).value


# --- the text scorers ------------------------------------------------------------------------------


async def test_exact() -> None:
    assert await value("exact", "Paris", "  Paris\n") == 1.0
    assert await value("exact", "Paris", "Paris.") == 0.0
    assert await value("exact", "Paris", "paris") == 0.0
    assert await value("exact", 72, "72") == 1.0
    assert await value("exact", ["Paris", "Paris, France"], "Paris, France") == 1.0
    missing = await score("exact", None, "Paris")
    assert missing.value is None and missing.error == "exact: the case has no expected answer"


async def test_normalised_is_squad_style() -> None:
    for spec in ("normalised", "normalized"):
        assert await value(spec, "The Eiffel Tower", "eiffel   tower!") == 1.0
        assert await value(spec, "an apple, a day", "Apple day.") == 1.0
        assert await value(spec, "Eiffel Tower", "The tower") == 0.0
    assert (await score("normalized", "x", "x")).value == 1.0
    assert build_scorer("normalized", NOWHERE).name == "normalised"


async def test_contains() -> None:
    assert await value("contains", "Paris", "It is PARIS, of course.") == 1.0
    assert await value("contains", "Paris", "It is Lyon.") == 0.0
    assert await value("contains:text=lyon", None, "It is Lyon.") == 1.0
    hit = await score("contains", ["Rome", "Paris"], "paris")
    assert hit.value == 1.0 and hit.detail == {"found": "Paris"}


async def test_regex() -> None:
    assert await value(r"regex:pattern='^\d+$'", None, "42") == 1.0
    assert await value(r"regex:pattern='^\d+$'", None, "42 apples") == 0.0
    assert await value(r"regex:pattern=^\d{1,3}$", None, "123") == 1.0  # the comma needs no quotes
    assert await value(r"regex:pattern=^\d{1,3}$", None, "1234") == 0.0
    assert await value("regex:pattern=^yes,flags=i", None, "YES sir") == 1.0
    found = await score(r"regex:pattern=\d+ apples", None, "I have 42 apples.")
    assert found.detail == {"match": "42 apples"}
    with pytest.raises(ScorerError, match=r"scorer regex: invalid pattern '\(unclosed': missing \)"):
        build_scorer("regex:pattern=(unclosed", NOWHERE)
    with pytest.raises(ScorerError, match="scorer regex: pattern= is required"):
        build_scorer("regex", NOWHERE)
    with pytest.raises(ScorerError, match="flags='x': use i, m or s"):
        build_scorer("regex:pattern=a,flags=x", NOWHERE)


async def test_numeric_reads_final_numbers() -> None:
    solution = "She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18"
    assert await value("numeric", solution, "So she earns $18 a day.") == 1.0
    assert await value("numeric", solution, "9 * 2 = 18, so the answer is 18.") == 1.0
    assert await value("numeric", solution, "3 + 15 = 18\n#### 18") == 1.0
    assert await value("numeric", solution, "The answer is 18 dollars, not 20.") == 1.0
    assert await value("numeric", 70000, r"Profit: $\boxed{70,000}$") == 1.0
    assert await value("numeric", "-3.5", "It drops to -3.50 degrees") == 1.0
    assert await value("numeric", 1234567, "1,234,567 people") == 1.0
    wrong = await score("numeric", solution, "She makes 16 - 3 - 4 = 9 eggs, so 17 dollars.")
    assert wrong.value == 0.0 and wrong.detail == {"found": 17, "expected": 18}
    none = await score("numeric", solution, "I do not know.")
    assert none.value == 0.0 and none.detail["found"] is None
    assert await value("numeric", 0.3, "0.3001") == 0.0
    assert await value("numeric:tol=0.01", 0.3, "about 0.301") == 1.0
    no_number = await score("numeric", "Paris", "42")
    assert (
        no_number.value is None and no_number.error == "numeric: the expected answer has no number: 'Paris'"
    )
    with pytest.raises(ScorerError, match="tol='close' is not a number"):
        build_scorer("numeric:tol=close", NOWHERE)


async def test_numeric_on_the_real_gsm8k_answers() -> None:
    cases, _ = load_file(shared(GSM8K))
    scorer = build_scorer("numeric", NOWHERE)
    for item in cases:
        truth = float(item.expected.split("####")[-1].strip().replace(",", ""))
        # The reference solution itself, and answers written as a model would write them.
        assert (await scorer.score(item, Answer(item.expected))).value == 1.0, item.expected
        said = f"Step by step... so the answer is ${truth:,.0f}." if truth.is_integer() else f"= {truth}"
        assert (await scorer.score(item, Answer(said))).value == 1.0, (said, item.expected)
        wrong = int(truth) + 1 if truth.is_integer() else truth + 1
        off = await scorer.score(item, Answer(f"{item.expected.split('####')[0]}#### {wrong}"))
        assert off.value == 0.0 and off.detail["expected"] == truth


# --- structured answers ----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


async def test_json() -> None:
    assert await value("json", None, '{"a": [1, 2]}') == 1.0
    assert await value("json", None, 'Here it is:\n```json\n{"a": 1}\n```\nDone.') == 1.0
    bad = await score("json", None, "{'a': 1}")
    assert bad.value == 0.0 and bad.detail["problem"].startswith("not JSON: Expecting property name")


async def test_json_schema_from_a_file_inline_and_the_case(tmp_path: Path) -> None:
    schema_file = tmp_path / "person.json"
    schema_file.write_text(json.dumps(SCHEMA))
    inline = "json_schema:schema='" + json.dumps(SCHEMA) + "'"
    for spec in (f"json_schema:schema={schema_file}", inline):
        assert await value(spec, None, '{"name": "Ada", "age": 36}') == 1.0
        wrong = await score(spec, None, '{"name": "Ada", "age": "old"}')
        assert wrong.value == 0.0 and wrong.detail == {
            "problem": "age: 'old' is not of type 'integer'",
            "errors": 1,
        }
        assert (await score(spec, None, "not json")).detail["problem"].startswith("not JSON")
    from_case = await score("json_schema", None, '```json\n{"name": "Ada"}\n```', schema=SCHEMA)
    assert from_case.value == 0.0 and from_case.detail["problem"] == "(root): 'age' is a required property"
    assert await value("json_schema", None, '{"name": "Ada", "age": 1}', schema=json.dumps(SCHEMA)) == 1.0
    unknown = await score("json_schema", None, "{}")
    assert unknown.value is None and "no schema" in (unknown.error or "")
    with pytest.raises(ScorerError, match="cannot read"):
        build_scorer(f"json_schema:schema={tmp_path / 'missing.json'}", NOWHERE)
    with pytest.raises(ScorerError, match="not a valid JSON Schema"):
        build_scorer("""json_schema:schema='{"type": "no-such-type"}'""", NOWHERE)


# --- similarity --------------------------------------------------------------------------------------


async def test_rouge_l() -> None:
    assert await value("rouge_l", "the cat sat on the mat", "The cat sat on the mat.") == pytest.approx(1.0)
    partial = await value("rouge_l", "the cat sat on the mat", "a cat was on a mat")
    assert partial is not None and 0.3 < partial < 0.8
    assert await value("rouge_l", "the cat sat on the mat", "dogs bark loudly") == 0.0
    assert await value("rouge:stem=true", "cats running", "cat runs") == pytest.approx(1.0)


async def test_embedding_similarity_with_the_real_minilm(embedded: InProcess) -> None:
    expected = "The capital of France is Paris."
    close = await score("embedding", expected, "Paris is France's capital city.", embedded)
    far = await score("embedding", expected, "Bananas are rich in potassium.", embedded)
    assert close.value is not None and far.value is not None
    assert 0.8 < close.value <= 1.0 and 0.0 <= far.value < 0.3
    assert close.detail["model"] == "all-minilm-l6-v2"
    missing = await score("embedding:model=no-such-embedder", expected, "Paris", embedded)
    assert missing.value is None and (missing.error or "").startswith(
        "embedding: model no-such-embedder failed"
    )


# --- the judge -------------------------------------------------------------------------------------


async def judged(upstream: Upstream, says: str, extra: str = "") -> Judgement:
    spec = f"judge:model='say:{says}'{extra}"
    return await score(spec, "Paris", "It is Paris.", HTTPUpstream(upstream.base_url))


async def test_judge_reads_the_usual_verdicts(upstream: Upstream) -> None:
    mt_bench = await judged(upstream, "The answer is right and brief. Rating: [[8]]")
    assert mt_bench.value == pytest.approx(7 / 9) and mt_bench.error is None
    assert mt_bench.detail["raw"] == "The answer is right and brief. Rating: [[8]]"
    assert mt_bench.detail["score"] == 8
    asked = upstream.requests[-1]
    prompt = asked["messages"][-1]["content"]
    assert "What is the capital of France?" in prompt and "[Reference answer]\nParis" in prompt
    assert "It is Paris." in prompt and "Rating: [[N]]" in prompt and asked["temperature"] == 0.0
    assert (await judged(upstream, '{"score": 10, "reason": "correct"}')).value == 1.0
    assert (await judged(upstream, "Score: 1/10")).value == 0.0
    assert (await judged(upstream, "Rating: 3", ",scale=1-5")).value == 0.5
    with_rubric = await judged(upstream, "Score: 0.75", ",rubric='Is it polite?',scale=0-1")
    assert with_rubric.value == 0.75 and upstream.requests[-1]["messages"][0]["content"] == "Is it polite?"


async def test_judge_without_a_score_is_a_clear_error(upstream: Upstream) -> None:
    vague = await judged(upstream, "Well, it depends on how you look at it.")
    assert vague.value is None
    assert vague.error == "judge output has no score: 'Well, it depends on how you look at it.'"
    assert vague.detail["raw"] == "Well, it depends on how you look at it."
    outside = await judged(upstream, "Rating: [[12]]")
    assert outside.value is None and outside.error == "judge score 12 is outside the scale 1-10"
    assert outside.detail["raw"] == "Rating: [[12]]"
    long = await judged(upstream, "x" * 300)
    assert long.error == f"judge output has no score: '{'x' * 80}'"


async def test_a_failing_judge_is_a_clear_error(upstream: Upstream) -> None:
    failed = await score("judge:model=fail", "Paris", "It is Paris.", HTTPUpstream(upstream.base_url))
    assert failed.value is None and failed.error == "judge call failed: 500 upstream_error: upstream exploded"
    assert failed.detail["raw"] is None
    with pytest.raises(ScorerError, match=r"scorer judge: model= is required"):
        build_scorer("judge", NOWHERE)
    with pytest.raises(ScorerError, match="scale='ten': use LOW-HIGH"):
        build_scorer("judge:model=m,scale=ten", NOWHERE)


async def test_judge_rubric_from_a_file(upstream: Upstream, tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("Judge only whether the answer names the right city.\n")
    await judged(upstream, "Rating: [[9]]", f",rubric={rubric}")
    assert (
        upstream.requests[-1]["messages"][0]["content"]
        == "Judge only whether the answer names the right city."
    )


async def test_the_real_smollm2_as_judge_gives_a_number_or_a_clear_error(embedded: InProcess) -> None:
    judgement = await score(
        "judge:model=smollm2-135m-instruct,max_tokens=48", "Paris", "It is Paris.", embedded
    )
    assert isinstance(judgement.detail["raw"], str)
    if judgement.value is None:
        assert judgement.error and judgement.error.startswith(("judge output has no score", "judge score"))
    else:
        assert not math.isnan(judgement.value) and 0.0 <= judgement.value <= 1.0


def test_parse_score_forms() -> None:
    assert parse_score("Explanation...\nRating: [[7.5]]") == 7.5
    assert parse_score("[[3]] at first, but on reflection [[4]]") == 4
    assert parse_score('```json\n{"score": 6}\n```') == 6
    assert parse_score("**Score:** 9") == 9
    assert parse_score("  8 ") == 8
    assert parse_score("no idea") is None
    assert parse_score("") is None


# --- latency, cost and failed answers ------------------------------------------------------------------


async def test_latency_and_cost() -> None:
    assert await value("latency", None, "x") == 12.5
    assert await value("cost", None, "x") == 0.0003
    unpriced = await build_scorer("cost", NOWHERE).score(case(), Answer("x", latency_ms=3.0))
    assert unpriced.value is None and unpriced.error == "cost: unknown (the model has no price)"
    unmeasured = await build_scorer("latency", NOWHERE).score(case(), Answer("x"))
    assert unmeasured.value is None and unmeasured.error == "latency: not measured"


async def test_a_failed_answer_is_never_scored_except_for_latency(upstream: Upstream) -> None:
    failed = Answer(None, latency_ms=40.0, error="429 rate_limited: slow down")
    target = HTTPUpstream(upstream.base_url)
    specs = [name for name in BUILTINS if name not in ("regex", "judge", "latency")]
    specs += ["regex:pattern=x", "judge:model='say:Rating: [[9]]'"]
    calls = upstream.calls
    for spec in specs:
        judgement = await build_scorer(spec, target).score(case("Paris", schema=SCHEMA), failed)
        assert judgement == Judgement(None, error="429 rate_limited: slow down"), spec
    assert upstream.calls == calls  # the judge was not asked
    latency = await build_scorer("latency", target).score(case(), failed)
    assert latency.value == 40.0


# --- specs and plugins ------------------------------------------------------------------------------


class LengthScorer:
    """A plugin: 1 when the answer is at most `max=` characters long."""

    name = "length"

    def __init__(self, params: dict[str, str], target: Target) -> None:
        self.limit = int(params.get("max", "100"))

    async def score(self, case: Case, answer: Answer) -> Judgement:
        return Judgement(1.0 if len(answer.text or "") <= self.limit else 0.0)


def test_spec_syntax() -> None:
    spec = parse_spec("""judge:model=gpt-4o,rubric='Be strict, fair: and "brief"',scale="1-5" """)
    assert spec.name == "judge"
    assert spec.params == {"model": "gpt-4o", "rubric": 'Be strict, fair: and "brief"', "scale": "1-5"}
    assert parse_spec(r"contains:text='it\'s'").params == {"text": "it's"}
    assert parse_spec("regex:pattern=a,b").params == {"pattern": "a,b"}
    assert parse_spec("tests.evals.test_scorers:LengthScorer:max=5").plugin
    for bad, message in [
        ("", "an empty scorer spec"),
        ("exact:strict", "scorer exact: expected key=value"),
        ("judge:model='unclosed", "no closing '"),
        ("judge:model=a,model=b", "model is given twice"),
    ]:
        with pytest.raises(ScorerError, match=message):
            parse_spec(bad)


def test_unknown_names_and_options_say_what_there_is() -> None:
    with pytest.raises(ScorerError) as unknown:
        build_scorer("bleu", NOWHERE)
    assert str(unknown.value).startswith(
        "unknown scorer 'bleu'; known scorers: contains, cost, embedding, exact"
    )
    assert unknown.value.status == 400 and "\n" not in str(unknown.value)
    with pytest.raises(ScorerError, match=r"scorer numeric: unknown option tolerance \(options: tol, name\)"):
        build_scorer("numeric:tolerance=1", NOWHERE)
    with pytest.raises(ScorerError, match="cannot be imported: No module named 'nowhere'"):
        build_scorer("nowhere.module:Scorer", NOWHERE)
    with pytest.raises(ScorerError, match=r"tests\.evals\.test_scorers has no Missing"):
        build_scorer("tests.evals.test_scorers:Missing", NOWHERE)


async def test_plugins_by_path_and_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    by_path = build_scorer("tests.evals.test_scorers:LengthScorer:max=5", NOWHERE)
    assert by_path.name == "length"
    assert (await by_path.score(case(), Answer("short"))).value == 1.0
    assert (await by_path.score(case(), Answer("much too long"))).value == 0.0
    renamed = build_scorer("exact:name=exact_again", NOWHERE)
    assert renamed.name == "exact_again" and (await renamed.score(case("a"), Answer("a"))).value == 1.0

    plugin = EntryPoint("length", "tests.evals.test_scorers:LengthScorer", ENTRY_POINT_GROUP)
    real = scorers_module.entry_points

    def with_plugin(**select: Any) -> Any:
        found = [ep for ep in real(group=ENTRY_POINT_GROUP) if select.get("name") in (None, ep.name)]
        return found + ([plugin] if select.get("name") in (None, "length") else [])

    monkeypatch.setattr(scorers_module, "entry_points", with_plugin)
    assert build_scorer("length:max=3", NOWHERE).name == "length"
    assert "length" in scorers_module.known_scorers()


def test_built_ins_are_entry_points_and_work_without_them(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed == BUILTINS  # pyproject.toml registers each built-in, as a plugin would be
    monkeypatch.setattr(scorers_module, "entry_points", lambda **_: [])  # stale install metadata
    for name in BUILTINS:
        spec = {"regex": "regex:pattern=x", "judge": "judge:model=m"}.get(name, name)
        assert build_scorer(spec, NOWHERE).name == name

    # Metadata naming a module that has moved: the built-in still builds, a broken plugin is an error.
    moved = [
        EntryPoint("exact", "strato.evals.moved_away:Exact", ENTRY_POINT_GROUP),
        EntryPoint("broken", "tests.evals.no_such_module:Scorer", ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(
        scorers_module, "entry_points", lambda **s: [ep for ep in moved if s.get("name") in (None, ep.name)]
    )
    assert build_scorer("exact", NOWHERE).name == "exact"
    with pytest.raises(ScorerError, match="scorer broken: cannot be loaded: No module named"):
        build_scorer("broken", NOWHERE)
