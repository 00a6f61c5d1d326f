# Two commands a user needs: `make serve` and `make test`. Everything else is a step they depend on.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# llama.cpp compiles from source. A native build can use CPU instructions that CI machines and
# laptops of the same kind do not all have ("Illegal instruction"); pin a portable AVX2 build.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export HF_HUB_OFFLINE := 1

.PHONY: install serve test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

serve: install
	$(BIN)/strato serve

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# pytest exits 5 when it collects no tests; that is not a failure of the suite.
test: install lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider; status=$$?; if [ $$status -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$status

# Benchmarks compare strato with the peers a user would pick instead; their extra compiles llama-server.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[all,dev,bench]'
	touch $(BENCH_STAMP)

# LiteLLM's proxy, the gateway strato's overhead is measured against, lives in a virtualenv of its
# own so its many dependencies never mix with strato's.
LITELLM := .venv-litellm/bin/litellm
$(LITELLM):
	$(PYTHON) -m venv .venv-litellm
	.venv-litellm/bin/pip install --quiet 'litellm[proxy]==1.100.5'

# gateway_overhead.py also needs Debian's nginx and wrk: apt-get install nginx-light wrk
bench: $(BENCH_STAMP) $(LITELLM)
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/lookup.py
	$(BIN)/python benchmarks/gateway_overhead.py

clean:
	rm -rf $(VENV) .venv-litellm build src/*.egg-info .mypy_cache .ruff_cache
