"""What a fine-tuning job may set, with its defaults: the LoRA adapter's shape and the training
schedule. The defaults train CLINC150-sized classification tasks on two CPU cores in minutes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Every linear layer of a llama block: the adapter learns most where it touches the most weights.
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TuneOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(16, ge=1, le=256, description="LoRA rank: the adapter's width per layer.")
    alpha: int = Field(32, ge=1, description="LoRA alpha: the adapter's output is scaled by alpha / rank.")
    target_modules: tuple[str, ...] = Field(
        ALL_LINEAR, min_length=1, description="The base's linear layers the adapter is applied to."
    )
    layers_from: int = Field(
        0,
        ge=0,
        description="Adapt only blocks from this one up: training skips the backward pass below it "
        "(about twice as fast from the middle block, for some loss of accuracy).",
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training examples (ignored with `steps`).")
    steps: int | None = Field(None, ge=1, description="Optimiser steps to train for, instead of `epochs`.")
    learning_rate: float = Field(1e-3, gt=0, lt=1, description="AdamW's learning rate, decayed linearly.")
    batch_size: int = Field(16, ge=1, le=512, description="Examples per optimiser step.")
    max_seq_len: int = Field(
        256, ge=8, le=8192, description="Longer examples are cut to this many tokens (prompt first)."
    )
    held_out: float = Field(
        0.1, ge=0, lt=1, description="Share of the data set kept out of training for the evaluation gate."
    )
    seed: int = Field(0, description="Chooses the held-out cases, the example order and the adapter's start.")
    max_minutes: float | None = Field(
        None, gt=0, description="Stop (checkpointed, resumable) after this many minutes of training."
    )
    checkpoint_every: int = Field(
        20, ge=1, description="Steps between checkpoints; an interrupted job resumes from the last."
    )
