"""A trained peft LoRA adapter written as llama.cpp's GGUF adapter, which the engine applies on top
of the base model's own (quantised) weights.

The layout is what llama.cpp's `convert_lora_to_gguf.py` writes: `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha`, and per adapted weight a `<gguf name>.lora_a` of shape
(rank, inputs) and `.lora_b` of (outputs, rank). For the llama architecture llama.cpp stores the
query and key projections with their rows permuted (rotary embedding pairs interleaved); transformers
undoes that when it loads a GGUF, so the adapter's `lora_b` of those two gets the same permutation
on the way back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from strato.errors import InvalidRequest

# Architectures whose GGUF tensors strato knows how to name and lay out for an adapter.
SUPPORTED = ("llama", "gemma3")


class UnsupportedBase(InvalidRequest):
    code = "unsupported_base"


def base_shape(base: Path) -> dict[str, Any]:
    """The base GGUF's architecture, block count and attention heads (what the export needs)."""
    import gguf

    reader = gguf.GGUFReader(str(base))

    def field(key: str) -> Any:
        found = reader.fields.get(key)
        if found is None:
            return None
        return found.contents()

    arch = field("general.architecture")
    if arch not in SUPPORTED:
        raise UnsupportedBase(
            f"{base.name}: fine-tuning supports the {' and '.join(SUPPORTED)} architectures, not {arch!r}"
        )
    return {
        "arch": arch,
        "blocks": int(field(f"{arch}.block_count")),
        "heads": int(field(f"{arch}.attention.head_count")),
        "kv_heads": int(field(f"{arch}.attention.head_count_kv") or field(f"{arch}.attention.head_count")),
    }


def permute(weights: Any, heads: int) -> Any:
    """llama.cpp's row order for a llama query or key projection (convert_hf_to_gguf's `permute`)."""
    rows = weights.shape[0]
    return (
        weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def export_adapter(adapter_dir: Path, base: Path, out: Path) -> Path:
    """Write the peft adapter saved in `adapter_dir` (trained on `base`) as a GGUF adapter at `out`,
    atomically: a reader never sees half a file."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    shape = base_shape(base)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == shape["arch"])
    names = gguf.get_tensor_name_map(arch, shape["blocks"])
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch=shape["arch"])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for key in sorted(tensors):
        if ".lora_A." not in key:
            continue
        module = key.split("base_model.model.", 1)[-1].split(".lora_A.")[0]  # model.layers.3.self_attn.q_proj
        lora_a = tensors[key].astype(np.float32)
        lora_b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        if shape["arch"] == "llama" and module.endswith("q_proj"):
            lora_b = permute(lora_b, shape["heads"])
        elif shape["arch"] == "llama" and module.endswith("k_proj"):
            lora_b = permute(lora_b, shape["kv_heads"])
        name = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if name is None:
            raise UnsupportedBase(f"the adapter adapts {module}, which has no GGUF tensor in {base.name}")
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(lora_a))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(lora_b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out
