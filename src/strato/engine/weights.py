"""A GGUF model's weights, vocabulary and chat template, loaded once and shared by its contexts."""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from typing import Any, cast

from strato.errors import InvalidRequest, StratoError
from strato.types import GenerationRequest

LLAMA_LOGGER = "llama-cpp-python"


class EngineError(StratoError):
    """llama.cpp refused to load or run something; the message says what."""


def llama() -> Any:
    """The llama.cpp bindings, imported on first use (importing them loads the shared library)."""
    from llama_cpp import llama_cpp as lib

    # llama-cpp-python prints llama.cpp's log to stderr at INFO; keep errors only.
    logging.getLogger(LLAMA_LOGGER).setLevel(logging.ERROR)
    return lib


class Weights:
    """A loaded GGUF model. Thread-safe for reading; contexts and adapters are created from it."""

    def __init__(self, path: Path) -> None:
        lib = llama()
        lib.llama_backend_init()  # idempotent
        self.lib = lib
        self.path = path
        params = lib.llama_model_default_params()
        self.model = lib.llama_model_load_from_file(str(path).encode(), params)
        if not self.model:
            raise EngineError(f"llama.cpp could not load {path}", status=500, code="model_load_failed")
        self.vocab = lib.llama_model_get_vocab(self.model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._formatter = self._chat_formatter()

    # --- metadata -----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(4096)
        n = self.lib.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            self.lib.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    @property
    def context_train(self) -> int:
        return int(self.lib.llama_model_n_ctx_train(self.model))

    @property
    def size_bytes(self) -> int:
        return int(self.lib.llama_model_size(self.model))

    def kv_bytes_per_token(self) -> int:
        """Bytes of f16 K and V cache one token takes across all layers."""
        lib, model = self.lib, self.model
        arch = self.meta("general.architecture") or "llama"
        n_head = max(1, int(lib.llama_model_n_head(model)))
        head_dim = int(lib.llama_model_n_embd(model)) // n_head
        k_dim = int(self.meta(f"{arch}.attention.key_length") or head_dim)
        v_dim = int(self.meta(f"{arch}.attention.value_length") or head_dim)
        n_kv = int(lib.llama_model_n_head_kv(model))
        return int(lib.llama_model_n_layer(model)) * n_kv * (k_dim + v_dim) * 2

    # --- tokens -------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode()
        size = len(data) + 8
        buf = (self.lib.llama_token * size)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, size, add_special, parse_special)
        if n < 0:
            size = -n
            buf = (self.lib.llama_token * size)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, size, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes one token stands for (cached: the vocabulary is fixed)."""
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(64)
            n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self.lib.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            cached = self._pieces[token] = buf.raw[:n]
        return cached

    def is_end(self, token: int) -> bool:
        return bool(self.lib.llama_vocab_is_eog(self.vocab, token))

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """A chat request rendered with the model's own template, or a text prompt, as tokens."""
        if request.messages is None:
            return self.tokenize(request.prompt or "", add_special=True, parse_special=False)
        if self._formatter is None:
            raise InvalidRequest(
                f"model {request.model!r} has no chat template; use /v1/completions", param="model"
            )
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            rendered = self._formatter(messages=cast(Any, messages)).prompt
        except ValueError as exc:  # the template's own raise_exception (e.g. roles out of order)
            raise InvalidRequest(f"the model's chat template rejected the messages: {exc}") from None
        return self.tokenize(rendered, add_special=False, parse_special=True)

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.meta("tokenizer.chat_template")
        if not template:
            return None
        return Jinja2ChatFormatter(
            template=template,
            eos_token=self._special_text(self.lib.llama_vocab_eos(self.vocab)),
            bos_token=self._special_text(self.lib.llama_vocab_bos(self.vocab)),
        )

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.lib.llama_vocab_get_text(self.vocab, token)).decode("utf-8", errors="replace")

    # --- adapters -----------------------------------------------------------------------------

    def load_adapter(self, path: Path) -> Any:
        """A GGUF LoRA adapter for this model (freed with `free_adapter`)."""
        if not path.is_file():
            raise EngineError(f"LoRA adapter {path} does not exist", status=400, code="adapter_not_found")
        adapter = self.lib.llama_adapter_lora_init(self.model, str(path).encode())
        if not adapter:
            raise EngineError(
                f"llama.cpp could not load the LoRA adapter {path} for {self.path.name}",
                status=400,
                code="adapter_load_failed",
            )
        return adapter

    def free_adapter(self, adapter: Any) -> None:
        self.lib.llama_adapter_lora_free(adapter)

    def close(self) -> None:
        if self.model:
            self.lib.llama_model_free(self.model)
            self.model = None
