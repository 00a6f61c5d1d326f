"""The training loop a fine-tuning worker runs (never the gateway's process): the base GGUF loaded
by transformers (dequantised to fp32), a peft LoRA adapter on it, AdamW with a linear decay, the
loss on the assistant's tokens only, checkpoints to resume from.

Two things keep it fast on a CPU: the vocabulary projection (a fifth of a small model's weights)
runs only at the positions whose next token is an answer token, not at every position; and with
`layers_from` the backward pass stops at the lowest adapted block.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.errors import StratoError
from strato.tune.examples import Example
from strato.tune.options import TuneOptions

IGNORED = -100  # the label of a token the loss does not count (the prompt's)
WARMUP_SHARE = 0.05  # of the steps, with the learning rate rising from zero

Report = Callable[[dict[str, Any]], None]


class TrainingDiverged(StratoError):
    status = 500
    type = "api_error"
    code = "training_diverged"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How training ended: `finished`, or `stopped` at `max_minutes` (resumable)."""

    status: str
    step: int
    steps: int
    loss: float | None


def encode(tokenizer: Any, example: Example, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids and labels: the prompt as the model's own chat template renders it (labels
    ignored), then the assistant's turn up to its end-of-turn marker (labels = the tokens). A long
    example loses the start of its prompt, never its answer."""
    messages = list(example.messages)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": example.answer}], tokenize=False
    )
    turn = full[len(prompt) :] if full.startswith(prompt) else example.answer + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(turn.rstrip("\n"), add_special_tokens=False)["input_ids"][:max_len]
    prompt_ids = prompt_ids[max(0, len(prompt_ids) + len(answer_ids) - max_len) :]
    return prompt_ids + answer_ids, [IGNORED] * len(prompt_ids) + answer_ids


def schedule(count: int, options: TuneOptions) -> list[list[int]]:
    """Every step's batch of example indices, fixed by the seed: a resumed job takes up the same
    order where it stopped."""
    per_epoch = math.ceil(count / options.batch_size)
    steps = options.steps or max(1, math.ceil(options.epochs * per_epoch))
    batches: list[list[int]] = []
    epoch = 0
    while len(batches) < steps:
        order = list(range(count))
        random.Random(options.seed * 1_000_003 + epoch).shuffle(order)
        batches += [order[i : i + options.batch_size] for i in range(0, count, options.batch_size)]
        epoch += 1
    return batches[:steps]


def load_base(base: Path, cache: Path | None = None) -> tuple[Any, Any]:
    """The base GGUF as a transformers model (fp32) and its tokenizer. With `cache`, the
    dequantised model is kept there in transformers' own format, keyed by the GGUF's path, size and
    modification time: the next job on the same base loads it in a second or two instead of
    dequantising it again (about 17 s for SmolLM2-135M; 540 MB on disk)."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    kept = None if cache is None else cache / _cache_key(base)
    if kept is not None and (kept / "config.json").exists():
        model = AutoModelForCausalLM.from_pretrained(str(kept), dtype="float32")
        return model, AutoTokenizer.from_pretrained(str(kept))
    tokenizer = AutoTokenizer.from_pretrained(str(base.parent), gguf_file=base.name)
    model = AutoModelForCausalLM.from_pretrained(str(base.parent), gguf_file=base.name, dtype="float32")
    if kept is not None:
        _keep(model, tokenizer, kept)
    return model, tokenizer


def _cache_key(base: Path) -> str:
    import hashlib

    stat = base.stat()
    seen = f"{base.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    return f"{base.stem}-{hashlib.sha256(seen).hexdigest()[:16]}"


def _keep(model: Any, tokenizer: Any, folder: Path) -> None:
    """Save the dequantised model for the next job, in one rename. transformers refuses to save a
    model it loaded from a GGUF until the model forgets it was quantised; its weights are plain
    fp32 by then."""
    import shutil

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def train(
    base: Path,
    examples: Sequence[Example],
    options: TuneOptions,
    job_dir: Path,
    report: Report,
    bases: Path | None = None,
) -> Outcome:
    """Train an adapter on `examples`, checkpointing to `job_dir/checkpoint` and, once done, saving
    it to `job_dir/adapter`. Resumes from the checkpoint when there is one. `bases`: where
    dequantised bases are kept between jobs (`load_base`)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    torch.manual_seed(options.seed)
    started = time.monotonic()
    model, tokenizer = load_base(base, bases)
    model.config.use_cache = False
    checkpoint = recovered(job_dir / "checkpoint")
    blocks = model.config.num_hidden_layers
    if options.layers_from >= blocks:
        raise TrainingDiverged(f"layers_from is {options.layers_from}, but the base has {blocks} blocks")
    if (checkpoint / "adapter_model.safetensors").exists():
        peft_model = PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    else:
        config = LoraConfig(
            r=options.rank,
            lora_alpha=options.alpha,
            target_modules=list(options.target_modules),
            layers_to_transform=list(range(options.layers_from, blocks)),
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, config)
    encoded = [encode(tokenizer, e, options.max_seq_len) for e in examples]
    batches = schedule(len(encoded), options)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate)
    warmup = max(1, int(len(batches) * WARMUP_SHARE))

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (len(batches) - step) / max(1, len(batches) - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    step = 0
    state_file = checkpoint / "trainer.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = int(state["step"])
    report({"event": "loaded", "step": step, "steps": len(batches), "seconds": time.monotonic() - started})
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    causal: Any = peft_model.base_model.model  # the transformers model under the adapter
    inner, head = causal.model, causal.lm_head
    peft_model.train()
    tokens, began, loss_value, resumed_at = 0, time.monotonic(), None, step
    deadline = None if options.max_minutes is None else started + options.max_minutes * 60
    while step < len(batches):
        rows = [encoded[i] for i in batches[step]]
        width = max(len(ids) for ids, _ in rows)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in rows])
        labels = torch.tensor([y + [IGNORED] * (width - len(y)) for _, y in rows])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in rows])
        hidden = inner(input_ids=ids, attention_mask=mask).last_hidden_state
        targets = labels[:, 1:]
        counted = targets != IGNORED
        logits = head(hidden[:, :-1][counted])  # only where the next token is an answer token
        loss = torch.nn.functional.cross_entropy(logits.float(), targets[counted])
        loss_value = float(loss.item())
        if not math.isfinite(loss_value):
            raise TrainingDiverged(
                f"the loss became {loss_value} at step {step + 1}; the last checkpoint is kept. "
                "Try a lower learning rate."
            )
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(mask.sum())
        elapsed = time.monotonic() - began
        report(
            {
                "event": "step",
                "step": step,
                "steps": len(batches),
                "loss": loss_value,
                "tokens_per_second": tokens / elapsed if elapsed > 0 else 0.0,
                "eta_seconds": elapsed / (step - resumed_at) * (len(batches) - step),
            }
        )
        last = step == len(batches)
        out_of_time = deadline is not None and time.monotonic() >= deadline and not last
        if step % options.checkpoint_every == 0 or out_of_time:
            save_checkpoint(peft_model, optimizer, scheduler, step, checkpoint)
            report({"event": "checkpoint", "step": step})
        if out_of_time:
            return Outcome("stopped", step, len(batches), loss_value)
    save_adapter(peft_model, job_dir / "adapter")
    return Outcome("finished", step, len(batches), loss_value)


def save_adapter(model: Any, directory: Path) -> None:
    """peft's `save_pretrained` of the adapter alone. peft looks for the base's `config.json` to
    tell whether its vocabulary grew; a GGUF base has none, and its vocabulary is never trained."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Could not find a config file", module="peft")
        model.save_pretrained(str(directory))


def recovered(checkpoint: Path) -> Path:
    """The checkpoint directory, with the previous checkpoint put back if a job was killed between
    the two renames of `save_checkpoint`."""
    previous = checkpoint.with_name("checkpoint.previous")
    if not checkpoint.exists() and previous.exists():
        previous.rename(checkpoint)
    return checkpoint


def save_checkpoint(model: Any, optimizer: Any, scheduler: Any, step: int, checkpoint: Path) -> None:
    """The adapter and the optimiser's state, replaced in one rename: a job killed while saving
    keeps its previous checkpoint."""
    import shutil

    import torch

    partial = checkpoint.with_name("checkpoint.partial")
    shutil.rmtree(partial, ignore_errors=True)
    save_adapter(model, partial)
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step},
        partial / "trainer.pt",
    )
    previous = checkpoint.with_name("checkpoint.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if checkpoint.exists():
        checkpoint.rename(previous)
    partial.rename(checkpoint)
    shutil.rmtree(previous, ignore_errors=True)
