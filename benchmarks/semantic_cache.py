"""Semantic cache: how often a paraphrase is answered from the cache, how often a question that only
looks like a stored one is (a false hit: a wrong answer), across thresholds, with embeddings alone,
with the contrast checks (`strato.cache.contrast`) and with the contrast and coverage checks
(`strato.cache.coverage`, what the cache runs); what the coverage check adds to a lookup; and how
long a lookup takes with 100,000 questions in one bucket.

Pairs (the embedding model is strato's default, all-MiniLM-L6-v2, served by strato's own
sentence-transformers provider):
- `hand paraphrase`: questions written to mean the same thing (`cache_pairs.py`);
- `hand paraphrase (held out)`: 40 more, written before the coverage check and measured once it
  was done (no rule was written for them);
- `clinc near same-intent`: each CLINC150 test question with its nearest question of the same
  intent (read from ../shared/datasets/analytics/clinc150_data_full.json, never copied);
- `clinc random same-intent`: a random question of the same intent. Looser than a paraphrase:
  "how do I say hello in French" and "... goodbye in Spanish" share the intent `translate`, not
  the answer, so a low rate here is partly right;
- `hand negation` / `hand opposite` / `hand entity` / `hand number` / `hand direction`: a question
  and one that asks the opposite or about something else (below), GPTCache's known failure;
- `clinc near other-intent`: each test question with its nearest question of another intent;
- `covidqa same-paragraph`: each COVID-QA question (../shared/datasets/rag/covidqa_200423.json)
  with its nearest question on the same paragraph that has another gold answer (the spans do not
  overlap and the texts differ) and is not the same question written twice (equal once lowercased,
  without punctuation, articles or a plural s): a different thing asked about the same subject;
- `covidqa distinct questions`: the same pairs without those whose words are the same but for
  articles, auxiliaries, a few prepositions and a plural s ("what gives protection against X" /
  "what can give protection against X"), which ask one thing and may be served one answer.

Development and report are split. The contrast checks were written looking at the `(dev)` sets
(COVID-QA's even-numbered articles, CLINC150's train split: its val split, also looked at, has no
cross-intent pair over 0.88) and the hand-written pairs, never at the others. The other sets
(COVID-QA's odd-numbered articles, CLINC150's test split) are the figures to report; the threshold
is chosen on them alone (COVID-QA's excepted: no threshold brings it under the budget, see
`choose_threshold`).

A pair hits at threshold t when the cosine of the two embeddings is at least t (and, guarded, the
contrast checks of strato.cache.contrast find no difference). Latency: the real `SQLiteCache` (and
`RedisCache` if Redis answers) with N entries in one bucket: CLINC150 train questions plus mixtures
of two of them, so the vectors lie where real questions do; queries are the test questions.

    .venv/bin/python benchmarks/semantic_cache.py [--entries 100000] [--queries 300]
        [--backends sqlite redis] [--no-dev] [--json benchmarks/out/semantic_cache.json]

Prints tables and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cache_pairs import DATASET, DEV, PARAPHRASE_SETS, embed_all, pair_sets

from strato.cache import Cache, CachePolicy, Entry
from strato.cache.answers import AnswerCache
from strato.cache.contrast import differ
from strato.cache.coverage import Coverage
from strato.cache.index import BucketIndex, Row
from strato.cache.keys import scope_id
from strato.cache.redis import RedisCache
from strato.cache.sqlite import SQLiteCache
from strato.config import CacheSettings, SemanticCacheSettings, default_models
from strato.providers import Embedder
from strato.providers.registry import build_models
from strato.types import EmbeddingRequest, Generation, GenerationRequest, Message, SamplingParams, Usage

THRESHOLDS = [0.70, 0.75, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96]
REDIS_URL = "redis://127.0.0.1:6379/0"


Pairs = dict[str, list[tuple[str, str, float]]]
Reasons = dict[str, list[tuple[str | None, str | None]]]


async def guard_reasons(sets: Pairs, embedder: Embedder) -> Reasons:
    """Per pair, why the contrast checks refuse it and why the coverage check refuses what they let
    through (None: no reason). Only pairs over the lowest threshold are checked: no other is a hit."""

    async def embed(words: Sequence[str]) -> list[list[float]]:
        return (await embedder.embed(EmbeddingRequest(model="all-minilm-l6-v2", inputs=tuple(words)))).vectors

    coverage = Coverage(embed)
    found: Reasons = {}
    for name, pairs in sets.items():
        contrast = [differ(a, b) if score >= THRESHOLDS[0] else None for a, b, score in pairs]
        asked = [i for i, why in enumerate(contrast) if why is None and pairs[i][2] >= THRESHOLDS[0]]
        covered: list[str | None] = [None] * len(pairs)
        for start in range(0, len(asked), 256):
            chunk = asked[start : start + 256]
            for i, why in zip(chunk, await coverage.check([pairs[i][:2] for i in chunk]), strict=True):
                covered[i] = why
        found[name] = list(zip(contrast, covered, strict=True))
    return found


def rates(sets: Pairs, reasons: Reasons) -> list[dict[str, Any]]:
    rows = []
    for threshold in THRESHOLDS:
        row: dict[str, Any] = {"threshold": threshold}
        for name, pairs in sets.items():
            hits = [score >= threshold for _, _, score in pairs]
            contrast = [h and c is None for h, (c, _) in zip(hits, reasons[name], strict=True)]
            guarded = [h and w is None for h, (_, w) in zip(contrast, reasons[name], strict=True)]
            row[name] = {
                "hit": sum(hits) / len(pairs),
                "hit_contrast": sum(contrast) / len(pairs),
                "hit_guarded": sum(guarded) / len(pairs),
            }
        rows.append(row)
    return rows


def print_rates(rows: list[dict[str, Any]], sets: Pairs) -> None:
    names = list(sets)
    print("\nHit rate by threshold (paraphrase sets: higher is better; the others are false hits).")
    print("Each cell: embeddings only / with the contrast checks / with the contrast and coverage checks.\n")
    print("| threshold | " + " | ".join(f"{n} ({len(sets[n])})" for n in names) + " |")
    print("|---:|" + "---:|" * len(names))
    for row in rows:
        cells = [
            f"{row[n]['hit']:.1%} / {row[n]['hit_contrast']:.1%} / {row[n]['hit_guarded']:.1%}" for n in names
        ]
        print(f"| {row['threshold']:.2f} | " + " | ".join(cells) + " |")


def at_default(sets: Pairs, reasons: Reasons) -> dict[str, Any]:
    """Hits at strato's default threshold per set, as counts: the false hits to report."""
    threshold = SemanticCacheSettings().threshold
    found: dict[str, Any] = {"threshold": threshold}
    print(f"\nAt the default threshold {threshold:.2f} (hits / pairs):\n")
    print("| set | pairs | embeddings only | contrast checks | contrast and coverage |")
    print("|---|---:|---:|---:|---:|")
    for name, pairs in sets.items():
        above = [why for (_, _, score), why in zip(pairs, reasons[name], strict=True) if score >= threshold]
        contrast = sum(c is None for c, _ in above)
        guarded = sum(c is None and w is None for c, w in above)
        found[name] = {
            "pairs": len(pairs),
            "hits": len(above),
            "hits_contrast": contrast,
            "hits_guarded": guarded,
        }
        print(
            f"| {name} | {len(pairs)} | {len(above)} ({len(above) / len(pairs):.1%}) "
            f"| {contrast} ({contrast / len(pairs):.2%}) | {guarded} ({guarded / len(pairs):.2%}) |"
        )
    return found


def contrast_cost(sets: Pairs) -> dict[str, float]:
    """Microseconds the contrast check takes on one pair (both questions read from scratch)."""
    samples = []
    for pairs in sets.values():
        for a, b, _ in pairs[:2000]:
            started = time.perf_counter()
            differ(a, b)
            samples.append(time.perf_counter() - started)
    return {
        "p50_us": float(np.percentile(samples, 50)) * 1e6,
        "p99_us": float(np.percentile(samples, 99)) * 1e6,
    }


def refusals(sets: Pairs, reasons: Reasons, threshold: float) -> dict[str, dict[str, int]]:
    """Why the guard refused the pairs at or above `threshold`, per set."""
    found: dict[str, dict[str, int]] = {}
    for name, pairs in sets.items():
        why = Counter(
            c or w or "passed"
            for (_, _, s), (c, w) in zip(pairs, reasons[name], strict=True)
            if s >= threshold
        )
        found[name] = dict(why)
    return found


async def guard_latency(
    embedder: Embedder, pairs: list[tuple[str, str]], others: list[str]
) -> dict[str, Any]:
    """Milliseconds one lookup takes (embedding the question included) with the coverage check
    and without it: of a question with a stored paraphrase over the threshold (`pairs`: stored,
    asked; each in a bucket of its own, with a cache that has seen none of its words), and of one
    with no stored question near it (`others`, asked against every stored question of `pairs`)."""
    settings = CacheSettings.model_validate({"models": {"chat": {"mode": "semantic"}}})

    def ask(question: str, bucket: str) -> GenerationRequest:
        messages = (Message("system", bucket), Message("user", question))
        return GenerationRequest(model="chat", messages=messages, params=SamplingParams(temperature=0))

    samples: dict[str, list[float]] = {"candidate_on": [], "candidate_off": [], "none_on": [], "none_off": []}
    with tempfile.TemporaryDirectory() as tmp:
        backend = SQLiteCache(Path(tmp) / "cache.db")
        try:
            store = AnswerCache(settings, backend, lambda _: embedder, coverage=False)
            for i, (stored, _) in enumerate(pairs):
                for bucket in (f"pair {i}", "all"):
                    lookup = await store.lookup(ask(stored, bucket), "tenant", CachePolicy(read=False))
                    await store.store(lookup, Generation("stored answer", "stop", Usage(10, 2)))
            for i, (_, asked) in enumerate(pairs):
                for on in (True, False):  # interleaved: the machine's load falls on both alike
                    cache = AnswerCache(settings, backend, lambda _: embedder, coverage=on)
                    started = time.perf_counter()
                    await cache.lookup(ask(asked, f"pair {i}"), "tenant", CachePolicy(write=False))
                    samples[f"candidate_{'on' if on else 'off'}"].append(time.perf_counter() - started)
            for question in others:
                for on in (True, False):
                    cache = AnswerCache(settings, backend, lambda _: embedder, coverage=on)
                    started = time.perf_counter()
                    found = await cache.lookup(ask(question, "all"), "tenant", CachePolicy(write=False))
                    samples[f"none_{'on' if on else 'off'}"].append(time.perf_counter() - started)
                    assert found.result == "miss"
        finally:
            await backend.aclose()
    return {name: float(np.percentile(values, 50)) * 1000 for name, values in samples.items()} | {
        "candidate_added_p50": float(
            np.percentile(np.subtract(samples["candidate_on"], samples["candidate_off"]), 50) * 1000
        ),
        "none_added_p50": float(
            np.percentile(np.subtract(samples["none_on"], samples["none_off"]), 50) * 1000
        ),
    }


def choose_threshold(rows: list[dict[str, Any]], budget: float) -> float:
    """The lowest threshold at which, with the guard, no set of different questions gets more than
    `budget` false hits (the hand-written sets are small: one hit there is over the budget). Not the
    `(dev)` sets, nor COVID-QA's: no threshold up to 0.96 brings it under the budget, so it is
    reported at each threshold instead of choosing one."""
    watched = [
        n
        for n in rows[0]
        if n not in ("threshold", *PARAPHRASE_SETS) and not n.endswith(DEV) and not n.startswith("covidqa")
    ]
    for row in rows:
        if all(row[n]["hit_guarded"] <= budget for n in watched):
            return float(row["threshold"])
    return float(rows[-1]["threshold"])


def latency_pairs(sets: Pairs, reasons: Reasons, count: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Pairs whose asked question has a candidate over 0.88 that the contrast checks let through
    (the written paraphrases, then CLINC150's), and questions near none of them (COVID-QA's)."""
    found = []
    for name in ("hand paraphrase", "clinc near same-intent"):
        for (a, b, score), (contrast, _) in zip(sets[name], reasons[name], strict=True):
            if score >= 0.88 and contrast is None:
                found.append((a, b))
    found = found[:count]
    return found, [a for a, _, _ in sets["covidqa same-paragraph"]][: len(found)]


def latency_vectors(vectors: np.ndarray, entries: int) -> np.ndarray:
    """`entries` vectors where real questions lie: the train questions, then mixtures of two."""
    rng = np.random.default_rng(0)
    extra = entries - len(vectors)
    if extra <= 0:
        return vectors[:entries]
    a, b = rng.integers(0, len(vectors), extra), rng.integers(0, len(vectors), extra)
    weight = rng.uniform(0.3, 0.7, (extra, 1)).astype(np.float32)
    mixed = weight * vectors[a] + (1 - weight) * vectors[b]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return np.concatenate([vectors, mixed])


async def fill(cache: Cache, vectors: np.ndarray, questions: list[str]) -> float:
    answer = Generation("stored answer", "stop", Usage(10, 2))
    expires = time.time() + 3600
    started = time.perf_counter()
    for start in range(0, len(vectors), 500):
        await asyncio.gather(
            *(
                cache.put(
                    Entry(
                        "tenant",
                        f"k{i}",
                        answer,
                        expires,
                        "bucket",
                        questions[i % len(questions)],
                        vectors[i],
                    )
                )
                for i in range(start, min(start + 500, len(vectors)))
            )
        )
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(samples, 50)) * 1000,
        "p99_ms": float(np.percentile(samples, 99)) * 1000,
    }


async def lookup_latency(
    backend: str, vectors: np.ndarray, queries: np.ndarray, questions: list[str]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"strato-bench:{time.time_ns()}:"
        cache: SQLiteCache | RedisCache = (
            SQLiteCache(Path(tmp) / "cache.db") if backend == "sqlite" else RedisCache(REDIS_URL, prefix)
        )
        try:
            fill_s = await fill(cache, vectors, questions)
            started = time.perf_counter()
            await cache.nearest("tenant", "bucket", queries[0], 0.9, 8)
            first_s = time.perf_counter() - started
            index = cache._indexes.get(scope_id("tenant"), "bucket")
            if index.loading is not None:  # the rest of the bucket loads in the background
                await index.loading
            loaded_s = time.perf_counter() - started
            assert index.size == len(vectors), index.size
            samples = []
            for query in queries:
                started = time.perf_counter()
                await cache.nearest("tenant", "bucket", query, 0.9, 8)
                samples.append(time.perf_counter() - started)
        finally:
            if isinstance(cache, RedisCache):
                keys = [k async for k in cache._redis.scan_iter(match=f"{prefix}*", count=5000)]
                for i in range(0, len(keys), 1000):
                    await cache._redis.delete(*keys[i : i + 1000])
            await cache.aclose()
    return {"fill_s": fill_s, "first_lookup_s": first_s, "bucket_loaded_s": loaded_s, **percentiles(samples)}


def search_latency_and_recall(vectors: np.ndarray, queries: np.ndarray, threshold: float) -> dict[str, Any]:
    """The in-memory search alone, and how often its sign-bit prefilter keeps the true best match."""
    index = BucketIndex()
    index.add(Row(f"k{i}", "", v, float("inf")) for i, v in enumerate(vectors))
    samples, agree, relevant, agree_relevant = [], 0, 0, 0
    for query in queries:
        started = time.perf_counter()
        found = index.search(query, -1.0, 1, time.time())
        samples.append(time.perf_counter() - started)
        exact = vectors @ query
        best = int(np.argmax(exact))
        same = bool(found) and found[0].key == f"k{best}"
        agree += same
        if exact[best] >= threshold:
            relevant += 1
            agree_relevant += same
    return {
        **percentiles(samples),
        "recall_at_1": agree / len(queries),
        "queries_with_a_match_over_threshold": relevant,
        "recall_at_1_over_threshold": agree_relevant / relevant if relevant else None,
    }


async def embedding_latency(embedder: Embedder, questions: list[str]) -> dict[str, float]:
    for question in questions[-100:]:  # warm up: torch prepares kernels per input length
        await embedder.embed(EmbeddingRequest(model="all-minilm-l6-v2", inputs=(question,)))
    samples = []
    for question in questions[:-100]:
        started = time.perf_counter()
        await embedder.embed(EmbeddingRequest(model="all-minilm-l6-v2", inputs=(question,)))
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="questions in the one bucket")
    parser.add_argument("--queries", type=int, default=300, help="lookups timed per backend")
    parser.add_argument("--budget", type=float, default=0.005, help="false-hit rate allowed when choosing")
    parser.add_argument("--backends", nargs="*", default=["sqlite", "redis"], choices=["sqlite", "redis"])
    parser.add_argument("--guard-lookups", type=int, default=200, help="lookups timed with a candidate")
    parser.add_argument("--no-dev", action="store_true", help="leave out the sets the checks were written on")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/semantic_cache.json"))
    args = parser.parse_args()

    models = build_models([m for m in default_models() if m.name == "all-minilm-l6-v2"])
    embedder = models.embedder("all-minilm-l6-v2")
    try:
        sets = await pair_sets(embedder, dev=not args.no_dev)
        reasons = await guard_reasons(sets, embedder)
        rows = rates(sets, reasons)
        print_rates(rows, sets)
        default = at_default(sets, reasons)
        check = contrast_cost(sets)
        print(f"\nThe contrast check: p50 {check['p50_us']:.0f} us, p99 {check['p99_us']:.0f} us a pair")
        chosen = choose_threshold(rows, args.budget)
        why = refusals(sets, reasons, chosen)
        print(f"\nChosen threshold: {chosen:.2f}. What the guard said about pairs at or above it:")
        for name, counts in why.items():
            print(f"  {name}: {counts}")
        guard = await guard_latency(embedder, *latency_pairs(sets, reasons, args.guard_lookups))
        print(
            f"\nOne lookup (embedding the question included), p50 without / with the coverage check: "
            f"{guard['candidate_off']:.1f} / {guard['candidate_on']:.1f} ms with a candidate (added: "
            f"{guard['candidate_added_p50']:.1f} ms), {guard['none_off']:.1f} / {guard['none_on']:.1f} ms "
            f"with none (added: {guard['none_added_p50']:.2f} ms)"
        )

        data = json.loads(DATASET.read_text())
        train = [row[0] for row in data["train"]]
        test = [row[0] for row in data["test"]]
        embed = await embedding_latency(embedder, test[: args.queries + 100])
        print(
            f"\nEmbedding one question (MiniLM, CPU): p50 {embed['p50_ms']:.1f} ms, "
            f"p99 {embed['p99_ms']:.1f} ms"
        )
        vectors = latency_vectors(await embed_all(embedder, train), args.entries)
        queries = await embed_all(embedder, test[: args.queries])
        search = search_latency_and_recall(vectors, queries, chosen)
        print(
            f"In-memory search, {len(vectors):,} vectors in one bucket: p50 {search['p50_ms']:.2f} ms, "
            f"p99 {search['p99_ms']:.2f} ms; the prefilter kept the true best match for "
            f"{search['recall_at_1']:.1%} of queries ({search['recall_at_1_over_threshold']:.1%} of the "
            f"{search['queries_with_a_match_over_threshold']} whose best match is over {chosen:.2f})"
        )
        backends = {}
        print(
            "\n| backend | entries | fill | first lookup (cold bucket) | bucket loaded after | lookup p50 "
            "| lookup p99 |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for backend in args.backends:
            try:
                result = await lookup_latency(backend, vectors, queries, train)
            except Exception as exc:  # Redis absent: report it and go on
                print(f"| {backend} | skipped: {type(exc).__name__}: {exc} |")
                continue
            backends[backend] = result
            print(
                f"| {backend} | {len(vectors):,} | {result['fill_s']:.1f} s "
                f"| {result['first_lookup_s'] * 1000:.0f} ms | {result['bucket_loaded_s']:.1f} s "
                f"| {result['p50_ms']:.2f} ms | {result['p99_ms']:.2f} ms |"
            )
    finally:
        await models.aclose()

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "meta": {"entries": len(vectors), "queries": args.queries, "budget": args.budget},
                "pairs": {name: len(pairs) for name, pairs in sets.items()},
                "rates": rows,
                "default_threshold": default,
                "contrast_check": check,
                "chosen_threshold": chosen,
                "guard_reasons_at_chosen": why,
                "guard_lookup_ms": guard,
                "embedding": embed,
                "search": search,
                "lookup": backends,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    asyncio.run(main())
