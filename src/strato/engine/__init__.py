"""The embedded engine: GGUF models run in-process by llama.cpp, many requests decoded together.

- `weights.Weights`: a GGUF file loaded once (mmap), its vocabulary, chat template and LoRA adapters.
- `batcher.Batcher`: one llama.cpp context with N sequence slots; a thread that admits queued
  requests into free slots, reuses cached prompt prefixes, and decodes every running sequence
  in one batch per step (continuous batching).
- `repetition.RepetitionCheck`: cuts an answer stuck in a loop, judged as the anomaly watch judges it.
- `pool.EnginePool`: the loaded models, loaded on first use and unloaded least-recently-used
  under a memory budget.

Nothing here knows about HTTP; `strato.providers.local` adapts it to the Provider seam.
"""
