"""Fine-tuning: a data set's cases become a LoRA adapter on a local model, trained on this CPU in a
worker process (transformers + peft), exported to llama.cpp's GGUF adapter format and served by
the engine on top of the base model's weights.

`examples` turns cases into chat examples, `options` holds what a job may set, `trainer` is the
training loop the worker runs, `export` writes the GGUF adapter, `jobs` runs a job in its own
process and keeps what it did on disk, so an interrupted job resumes from its last checkpoint.
"""
