"""Small GGUF LoRA adapters for SmolLM2-135M, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

N_LAYERS, N_EMBD = 30, 576  # SmolLM2-135M


def write_lora(path: Path, rank: int = 8, std: float = 0.08, seed: int = 0) -> Path:
    """A LoRA adapter on every layer's attention output projection, in llama.cpp's GGUF layout
    (what convert_lora_to_gguf.py writes): lora_a is (rank, n_in), lora_b is (n_out, rank)."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    rng = np.random.default_rng(seed)
    for layer in range(N_LAYERS):
        name = f"blk.{layer}.attn_output.weight"
        writer.add_tensor(f"{name}.lora_a", rng.normal(0, std, (rank, N_EMBD)).astype(np.float32))
        writer.add_tensor(f"{name}.lora_b", rng.normal(0, std, (N_EMBD, rank)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
