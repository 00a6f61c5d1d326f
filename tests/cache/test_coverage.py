"""The coverage check, with word embeddings from the real all-MiniLM-L6-v2: look-alike questions
that ask about another attribute of one subject are refused, paraphrases that say the same in
other words are not, and words are embedded only for pairs that need them, once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from strato.cache.coverage import Coverage, gaps
from strato.config import default_models
from strato.providers.registry import ModelTable, build_models
from strato.types import EmbeddingRequest


class Words:
    """The real embedder, counting the words it is asked for."""

    def __init__(self, table: ModelTable) -> None:
        self.table = table
        self.asked: list[list[str]] = []

    async def __call__(self, words: Sequence[str]) -> list[list[float]]:
        self.asked.append(list(words))
        request = EmbeddingRequest(model="all-minilm-l6-v2", inputs=tuple(words))
        return (await self.table.embedder("all-minilm-l6-v2").embed(request)).vectors


@pytest.fixture(scope="module")
async def table() -> AsyncIterator[ModelTable]:
    models = build_models([m for m in default_models() if m.name == "all-minilm-l6-v2"])
    yield models
    await models.aclose()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # one word each that the other lacks: another group, another period, another step
        (
            "What is the mortality rate of measles in children?",
            "What is the mortality rate of measles in adults?",
        ),
        ("What is the incubation period of mumps?", "What is the infectious period of mumps?"),
        ("How is the vaccine stored?", "How is the vaccine administered?"),
        # another attribute of the same subject
        ("What is the hallmark finding of scurvy?", "What could trigger scurvy?"),
        ("What are the main uses of the new alloy?", "What does the strength of the new alloy depend on?"),
        # what is asked for is added: a verb, a head noun, a superlative
        ("What are the applications of graphene?", "What do the applications of graphene depend on?"),
        ("What is malaria characterised by?", "What is malaria?"),
        (
            "What is the biggest risk factor for heart disease?",
            "What are the risk factors for heart disease?",
        ),
    ],
)
async def test_another_attribute_of_the_same_subject_is_refused(table: ModelTable, a: str, b: str) -> None:
    coverage = Coverage(Words(table))
    assert await coverage.check([(a, b), (b, a)]) == ["coverage", "coverage"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I turn on the flashlight?", "How can I enable the flashlight?"),  # a phrase for a word
        ("Who wrote the Odyssey?", "Who is the author of the Odyssey?"),  # listed synonyms
        ("How do I change my username?", "How can I update my username?"),
        ("Where can I buy stamps?", "Where can I purchase stamps?"),  # near in MiniLM: 0.87
        ("How do I get rid of ants in my kitchen?", "How can I remove ants from my kitchen?"),
        ("What's the best way to learn to swim?", "How do I learn to swim?"),  # frame words
        ("What's the command to list docker containers?", "How do I list docker containers?"),
        ("How many people live in Lisbon?", "What is the population of Lisbon?"),
        ("Which city is the capital of Kenya?", "What is the capital of Kenya?"),
        ("Is eating eggs bad for your health?", "Are eggs bad for you?"),  # two words added
        ("How can I tell if an egg is fresh?", "How do I check whether an egg is still fresh?"),
    ],
)
async def test_paraphrases_in_other_words_are_covered(table: ModelTable, a: str, b: str) -> None:
    coverage = Coverage(Words(table))
    assert await coverage.check([(a, b), (b, a)]) == [None, None]


async def test_words_are_embedded_in_one_batch_only_when_needed_and_remembered(table: ModelTable) -> None:
    words = Words(table)
    coverage = Coverage(words)
    same = ("How do I cancel my subscription?", "How can I cancel my subscription?")
    assert not gaps(*same).words()
    assert await coverage.check([same]) == [None]
    assert words.asked == []  # the same content words: nothing to embed
    pairs = [
        (
            "What is the mortality rate of measles in children?",
            "What is the mortality rate of measles in adults?",
        ),
        ("How do I clean a sofa?", "How do I clean a couch?"),  # no listed synonyms: MiniLM's 0.86
    ]
    assert await coverage.check(pairs) == ["coverage", None]
    assert len(words.asked) == 1 and {"children", "adults", "sofa", "couch"} <= set(words.asked[0])
    assert await coverage.check(pairs) == ["coverage", None]
    assert len(words.asked) == 1  # remembered
