# safe-report: `make run` to start everything, `make test` to check everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/safe-report
export RASA_TELEMETRY_ENABLED := false
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONHASHSEED := 0

# Rasa 3.6 needs Python 3.10 exactly. Use pyenv's (via .python-version) or any python3.10
# on PATH or in the usual places; say clearly when there is none.
PYTHON310 ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10 python3 python; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' >/dev/null 2>&1; then command -v $$p; break; fi; done)

.PHONY: help install nlp kb train run test lint validate check unit integration evaluate bench purge clean fuzz fuzz-venv

# schemathesis (the API fuzzer) lives in its own venv: it needs a newer jsonschema than Rasa.
FUZZ_VENV := .venv-fuzz

define need_python310
	@if [ -z "$(PYTHON310)" ]; then \
		echo "safe-report needs Python 3.10 (Rasa 3.6 does not run on 3.11 or later)."; \
		echo "Install it (for example: pyenv install 3.10.13, or your system's python3.10 package),"; \
		echo "or point to it: make PYTHON310=/path/to/python3.10 ..."; exit 1; fi
endef

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(need_python310)
	@echo "Using $(PYTHON310)"
	$(PYTHON310) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25" wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ## Create .venv with Python 3.10 and install safe-report

$(FUZZ_VENV)/.installed: tests/fuzz/requirements.txt
	$(need_python310)
	$(PYTHON310) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/python -m pip install --quiet --upgrade "pip<25"
	$(FUZZ_VENV)/bin/python -m pip install --quiet -r tests/fuzz/requirements.txt
	@touch $@

fuzz-venv: $(FUZZ_VENV)/.installed ## Create .venv-fuzz with schemathesis (tests/fuzz/requirements.txt)

nlp: install ## Build the project's spaCy pipelines from bot/nlp
	$(CLI) nlp build

kb: install ## Build the knowledge base (DATA_DIR/knowledge.db) from knowledge/
	$(CLI) kb build

train: nlp ## Train a model for the current data (fixed seeds) into models/
	$(CLI) train

run: install ## Install, build, train if needed, and start Rasa, actions and the web app
	$(CLI) run

lint: install ## Ruff over the Python code
	$(VENV)/bin/ruff check bot tests benchmarks

validate: nlp ## rasa data validate
	$(VENV)/bin/rasa data validate --data bot/data --domain domain.yml --config config.yml

check: install ## Knowledge-base checks (sources, contacts, links, numbers)
	$(CLI) kb check

unit: nlp ## Unit tests (no servers)
	$(PY) -m pytest -m "not integration and not browser and not services" -q

integration: train fuzz-venv ## Tests that start the real servers against the trained model
	$(PY) -m pytest -m "integration" -q

evaluate: train ## rasa test nlu + stories on the held-out data; fails under the thresholds
	$(PY) -m bot.evaluation

fuzz: train fuzz-venv ## Fuzz the running web app's endpoints with schemathesis (OpenAPI)
	$(PY) -m pytest tests/test_fuzz.py -q

test: lint validate check train fuzz-venv ## Everything CI runs (browser and services tests included)
	$(PY) -m pytest -q
	$(PY) -m bot.evaluation

bench: train ## Benchmarks: safe-report against stock Rasa, search, staff queue (prints figures)
	$(PY) -m benchmarks.bench_stack

purge: install ## Delete everything past its retention period now
	$(CLI) purge

clean: ## Remove build output, models and results (not DATA_DIR)
	rm -rf build models results .rasa .pytest_cache .ruff_cache
