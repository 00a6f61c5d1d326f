"""Semantic cache: how often a paraphrase is answered from the cache, how often a question that only
looks like a stored one is (a false hit: a wrong answer), across thresholds, with and without the
contrast guard; and how long a lookup takes with 100,000 questions in one bucket.

Pairs (the embedding model is strato's default, all-MiniLM-L6-v2, served by strato's own
sentence-transformers provider):
- `hand paraphrase`: questions written to mean the same thing (below);
- `clinc near same-intent`: each CLINC150 test question with its nearest question of the same
  intent (read from ../shared/datasets/analytics/clinc150_data_full.json, never copied);
- `clinc random same-intent`: a random question of the same intent. Looser than a paraphrase:
  "how do I say hello in French" and "... goodbye in Spanish" share the intent `translate`, not
  the answer, so a low rate here is partly right;
- `hand negation` / `hand opposite` / `hand entity` / `hand number` / `hand direction`: a question
  and one that asks the opposite or about something else (below), GPTCache's known failure;
- `clinc near other-intent`: each test question with its nearest question of another intent.

A pair hits at threshold t when the cosine of the two embeddings is at least t (and, guarded, the
contrast checks of strato.cache.contrast find no difference). Latency: the real `SQLiteCache` (and
`RedisCache` if Redis answers) with N entries in one bucket: CLINC150 train questions plus mixtures
of two of them, so the vectors lie where real questions do; queries are the test questions.

    .venv/bin/python benchmarks/semantic_cache.py [--entries 100000] [--queries 300]
        [--backends sqlite redis] [--json benchmarks/out/semantic_cache.json]

Prints tables and writes JSON. Not a test: figures go into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from strato.cache import Cache, Entry
from strato.cache.contrast import differ
from strato.cache.index import BucketIndex, Row
from strato.cache.keys import scope_id
from strato.cache.redis import RedisCache
from strato.cache.sqlite import SQLiteCache
from strato.config import default_models
from strato.providers import Embedder
from strato.providers.registry import build_models
from strato.types import EmbeddingRequest, Generation, Usage

DATASET = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "analytics" / "clinc150_data_full.json"
)
THRESHOLDS = [0.70, 0.75, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96]
REDIS_URL = "redis://127.0.0.1:6379/0"

HAND_PARAPHRASES = [
    ("How do I reset my password?", "What's the way to reset my password?"),
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("How do I enable dark mode?", "How can I turn on dark mode?"),
    ("What's the weather like in Paris today?", "How is the weather in Paris today?"),
    ("How many calories are in an apple?", "How many calories does an apple have?"),
    ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ("What time does the store close?", "When does the store close?"),
    ("How do I make pancakes?", "What's a good way to make pancakes?"),
    ("Who wrote Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("How do I install numpy?", "What's the command to install numpy?"),
    ("What is the boiling point of water?", "At what temperature does water boil?"),
    ("Can you recommend a good book on Python?", "Recommend me a good Python book."),
    ("How long does it take to boil an egg?", "How many minutes should I boil an egg?"),
    ("Translate good morning into Spanish.", "How do you say good morning in Spanish?"),
    ("What is a black hole?", "Explain what a black hole is."),
    ("How do I delete my account?", "How can I delete my account?"),
    ("What's the difference between TCP and UDP?", "How does TCP differ from UDP?"),
    ("How do I change my email address?", "How can I update my email address?"),
    ("Summarize the plot of Hamlet.", "Give me a summary of the plot of Hamlet."),
    ("What are the symptoms of the flu?", "What symptoms does the flu cause?"),
    ("How do I center a div in CSS?", "How can I center a div with CSS?"),
    ("What is 15% of 80?", "How much is 15 percent of 80?"),
    ("How do I undo the last git commit?", "How can I undo my last commit in git?"),
    ("What's the population of Tokyo?", "How many people live in Tokyo?"),
    ("Is coffee bad for you?", "Is drinking coffee bad for your health?"),
    (
        "How do I get to the airport from downtown?",
        "What's the best way to get from downtown to the airport?",
    ),
    ("What does HTTP stand for?", "What is HTTP short for?"),
    ("How do I convert Celsius to Fahrenheit?", "What's the formula to convert celsius to fahrenheit?"),
    ("Tell me a joke about cats.", "Tell me a cat joke."),
    ("How do I sort a list in Python?", "What's the way to sort a list in Python?"),
    ("Why is the sky blue?", "What makes the sky blue?"),
    ("How can I improve my sleep?", "What are ways to sleep better?"),
    ("What is the meaning of life?", "What's the meaning of life?"),
    ("How do I take a screenshot on Windows?", "How to take a screenshot on Windows?"),
    ("Where is the Eiffel Tower?", "Where is the Eiffel Tower located?"),
    ("How do I turn off notifications?", "How can I disable notifications?"),
    (
        "When was the Declaration of Independence signed?",
        "What year was the Declaration of Independence signed?",
    ),
    ("What is photosynthesis?", "Can you explain photosynthesis?"),
    ("How do I boil pasta?", "How should I cook pasta?"),
]

HAND_DIFFERENT: dict[str, list[tuple[str, str]]] = {
    "hand negation": [
        ("Why is the sky blue?", "Why is the sky not blue?"),
        ("Can I take ibuprofen with alcohol?", "Can I take ibuprofen without alcohol?"),
        ("Is Python a compiled language?", "Is Python not a compiled language?"),
        ("Which foods are gluten free?", "Which foods are not gluten free?"),
        ("Why is the museum open on Sundays?", "Why isn't the museum open on Sundays?"),
        ("Should I use tabs for indentation?", "Should I not use tabs for indentation?"),
        (
            "What happens if I pay my credit card bill on time?",
            "What happens if I don't pay my credit card bill on time?",
        ),
        ("Is it normal to feel tired after eating?", "Is it normal to not feel tired after eating?"),
        ("Does vitamin C prevent colds?", "Does vitamin C not prevent colds?"),
        ("Why do cats purr?", "Why don't cats purr?"),
        ("Can dogs eat grapes?", "Can dogs never eat grapes?"),
        ("What should I do when my code compiles?", "What should I do when my code doesn't compile?"),
        ("Is the bank open today?", "Is the bank not open today?"),
        ("Why does my phone charge?", "Why won't my phone charge?"),
        ("Can I return an item with a receipt?", "Can I return an item without a receipt?"),
    ],
    "hand opposite": [
        ("How do I enable dark mode?", "How do I disable dark mode?"),
        ("Is it safe to eat raw eggs?", "Is it unsafe to eat raw eggs?"),
        ("How do I install numpy?", "How do I uninstall numpy?"),
        ("What are the advantages of nuclear power?", "What are the disadvantages of nuclear power?"),
        ("How to increase my credit score?", "How to decrease my credit score?"),
        ("Should I buy bitcoin now?", "Should I sell bitcoin now?"),
        ("How do I lock my screen?", "How do I unlock my screen?"),
        ("How do I turn on bluetooth?", "How do I turn off bluetooth?"),
        ("How do I encrypt a file?", "How do I decrypt a file?"),
        ("How do I zoom in?", "How do I zoom out?"),
        ("What is the best programming language?", "What is the worst programming language?"),
        ("How do I upload photos to Google Drive?", "How do I download photos from Google Drive?"),
        ("What's the maximum dose of ibuprofen?", "What's the minimum dose of ibuprofen?"),
        ("How do I follow someone on Twitter?", "How do I unfollow someone on Twitter?"),
        ("How to gain weight quickly?", "How to lose weight quickly?"),
        ("How do I subscribe to the newsletter?", "How do I unsubscribe from the newsletter?"),
        ("What are the pros of remote work?", "What are the cons of remote work?"),
        ("What are the strengths of this plan?", "What are the weaknesses of this plan?"),
        ("How do I add a user to the group?", "How do I remove a user from the group?"),
        ("Why do prices rise?", "Why do prices fall?"),
        ("How do I start the server?", "How do I stop the server?"),
        ("How do I make the text bigger?", "How do I make the text smaller?"),
        ("How do I show hidden files?", "How do I hide hidden files?"),
        ("How do I mute the microphone?", "How do I unmute the microphone?"),
        ("How do I log in to my account?", "How do I log out of my account?"),
    ],
    "hand entity": [
        ("What is the capital of France?", "What is the capital of Germany?"),
        ("What's the weather in Paris?", "What's the weather in London?"),
        ("Who is the CEO of Apple?", "Who is the CEO of Microsoft?"),
        ("How tall is the Eiffel Tower?", "How tall is the Empire State Building?"),
        ("Translate hello into Spanish.", "Translate hello into French."),
        ("What is the population of Canada?", "What is the population of Australia?"),
        ("How do I reset my iPhone?", "How do I reset my Android phone?"),
        ("what is the weather in paris", "what is the weather in london"),
        ("give me a recipe for chicken curry", "give me a recipe for beef curry"),
        ("how do i learn python", "how do i learn java"),
        ("who won the world cup in brazil", "who won the world cup in russia"),
        ("how do i cook rice", "how do i cook quinoa"),
        ("what is the price of gold", "what is the price of silver"),
        ("when does the train to boston leave", "when does the train to chicago leave"),
        ("how do I bake bread", "how do I bake cookies"),
    ],
    "hand number": [
        ("What is 17 times 23?", "What is 17 times 24?"),
        ("Convert 5 miles to km.", "Convert 50 miles to km."),
        ("What was the weather on March 3?", "What was the weather on March 4?"),
        ("Set an alarm for 7 am.", "Set an alarm for 8 am."),
        ("What happened in 1969?", "What happened in 1996?"),
        ("Is 97 a prime number?", "Is 91 a prime number?"),
        ("How many days until December 25?", "How many days until December 24?"),
        ("What's the square root of 144?", "What's the square root of 169?"),
        ("How do I say two in French?", "How do I say three in French?"),
        ("Book a table for two.", "Book a table for four."),
        ("What is 2 to the power of 10?", "What is 2 to the power of 16?"),
        ("Is a 3% raise good?", "Is a 5% raise good?"),
    ],
    "hand direction": [
        (
            "What's the exchange rate from dollars to euros?",
            "What's the exchange rate from euros to dollars?",
        ),
        ("Flights from Boston to Denver", "Flights from Denver to Boston"),
        ("Is Python faster than Java?", "Is Java faster than Python?"),
        ("convert celsius to fahrenheit", "convert fahrenheit to celsius"),
        ("translate this from english into german", "translate this from german into english"),
        ("how far is it from new york to los angeles", "how far is it from los angeles to new york"),
    ],
}
PARAPHRASE_SETS = ("hand paraphrase", "clinc near same-intent", "clinc random same-intent")


async def embed_all(embedder: Embedder, texts: list[str], batch: int = 256) -> np.ndarray:
    vectors = []
    for i in range(0, len(texts), batch):
        result = await embedder.embed(
            EmbeddingRequest(model="all-minilm-l6-v2", inputs=tuple(texts[i : i + batch]))
        )
        vectors.extend(result.vectors)
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def clinc_pairs(
    texts: list[str], intents: list[str], vectors: np.ndarray
) -> dict[str, list[tuple[int, int]]]:
    """Index pairs: nearest same-intent, random same-intent and nearest other-intent question."""
    rng = random.Random(0)
    labels = np.asarray(intents)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -2)
    by_intent: dict[str, list[int]] = {}
    for i, intent in enumerate(intents):
        by_intent.setdefault(intent, []).append(i)
    near_same, random_same, near_other = set(), set(), set()
    for i in range(len(texts)):
        same = labels == labels[i]
        j = int(np.argmax(np.where(same, sims[i], -2)))
        k = int(np.argmax(np.where(same, -2, sims[i])))
        r = rng.choice([x for x in by_intent[intents[i]] if x != i])
        near_same.add((min(i, j), max(i, j)))
        near_other.add((min(i, k), max(i, k)))
        random_same.add((min(i, r), max(i, r)))
    return {
        "clinc near same-intent": sorted(near_same),
        "clinc random same-intent": sorted(random_same),
        "clinc near other-intent": sorted(near_other),
    }


async def pair_sets(embedder: Embedder) -> dict[str, list[tuple[str, str, float]]]:
    """Every pair set as (question, stored question, cosine)."""
    test = json.loads(DATASET.read_text())["test"]
    texts, intents = [row[0] for row in test], [row[1] for row in test]
    vectors = await embed_all(embedder, texts)
    sets: dict[str, list[tuple[str, str, float]]] = {}
    for name, pairs in clinc_pairs(texts, intents, vectors).items():
        sets[name] = [(texts[i], texts[j], float(vectors[i] @ vectors[j])) for i, j in pairs]
    for name, hand in [("hand paraphrase", HAND_PARAPHRASES), *HAND_DIFFERENT.items()]:
        left = await embed_all(embedder, [a for a, _ in hand])
        right = await embed_all(embedder, [b for _, b in hand])
        sets[name] = [(a, b, float(x @ y)) for (a, b), x, y in zip(hand, left, right, strict=True)]
    return sets


def rates(sets: dict[str, list[tuple[str, str, float]]]) -> list[dict[str, Any]]:
    refused = {name: [differ(a, b) is not None for a, b, _ in pairs] for name, pairs in sets.items()}
    rows = []
    for threshold in THRESHOLDS:
        row: dict[str, Any] = {"threshold": threshold}
        for name, pairs in sets.items():
            hits = [score >= threshold for _, _, score in pairs]
            guarded = [h and not r for h, r in zip(hits, refused[name], strict=True)]
            row[name] = {"hit": sum(hits) / len(pairs), "hit_guarded": sum(guarded) / len(pairs)}
        rows.append(row)
    return rows


def print_rates(rows: list[dict[str, Any]], sets: dict[str, list[Any]]) -> None:
    names = list(sets)
    print("\nHit rate by threshold (paraphrase sets: higher is better; the others are false hits).")
    print("Each cell: embeddings only / with the contrast guard.\n")
    print("| threshold | " + " | ".join(f"{n} ({len(sets[n])})" for n in names) + " |")
    print("|---:|" + "---:|" * len(names))
    for row in rows:
        cells = [f"{row[n]['hit']:.1%} / {row[n]['hit_guarded']:.1%}" for n in names]
        print(f"| {row['threshold']:.2f} | " + " | ".join(cells) + " |")


def refusals(sets: dict[str, list[tuple[str, str, float]]], threshold: float) -> dict[str, dict[str, int]]:
    """Why the guard refused the pairs at or above `threshold`, per set."""
    found: dict[str, dict[str, int]] = {}
    for name, pairs in sets.items():
        reasons = Counter(differ(a, b) or "passed" for a, b, score in pairs if score >= threshold)
        found[name] = dict(reasons)
    return found


def choose_threshold(rows: list[dict[str, Any]], budget: float) -> float:
    """The lowest threshold at which, with the guard, no set of different questions gets more than
    `budget` false hits (the hand-written sets are small: one hit there is over the budget)."""
    watched = [n for n in rows[0] if n not in ("threshold", *PARAPHRASE_SETS)]
    for row in rows:
        if all(row[n]["hit_guarded"] <= budget for n in watched):
            return float(row["threshold"])
    return float(rows[-1]["threshold"])


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
    parser.add_argument("--json", type=Path, default=Path("benchmarks/out/semantic_cache.json"))
    args = parser.parse_args()

    models = build_models([m for m in default_models() if m.name == "all-minilm-l6-v2"])
    embedder = models.embedder("all-minilm-l6-v2")
    try:
        sets = await pair_sets(embedder)
        rows = rates(sets)
        print_rates(rows, sets)
        chosen = choose_threshold(rows, args.budget)
        why = refusals(sets, chosen)
        print(f"\nChosen threshold: {chosen:.2f}. What the guard said about pairs at or above it:")
        for name, reasons in why.items():
            print(f"  {name}: {reasons}")

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
                "chosen_threshold": chosen,
                "guard_reasons_at_chosen": why,
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
