# Do deep networks forget facial action units? -- one command per job.
#   make book            set up .venv if needed, run every chapter, build the HTML book
#   make test            unit tests + a smoke build of the whole book
# Knobs: PROFILE=default|smoke|paper-smoke|paper, CH=03 (make chapter), SET="pain_epochs=5 width=0.25",
#        GPU=1 (make env: TensorFlow 2.14.1 with its CUDA libraries, for a GPU host)

PROFILE ?= default
PYTHON_BOOTSTRAP ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
KERNEL := forgetting-aus
SET ?=
SET_ARGS := $(foreach kv,$(SET),--set $(kv))
COMMA := ,
GPU ?=
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help env kernel book chapter check test test-unit sync clean lint bench bench-scale

help:  ## show this help
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables: PROFILE=$(PROFILE) (default|smoke|paper-smoke|paper), CH=NN for 'make chapter', SET=\"knob=value ...\""

$(STAMP): pyproject.toml scripts/check_python.py
	@$(PYTHON_BOOTSTRAP) scripts/check_python.py
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2"
	$(PY) -m pip install --quiet -e ".[dev$(if $(filter 1,$(GPU)),$(COMMA)gpu)]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (forgetting-aus)" >/dev/null
	@touch $(STAMP)

env: $(STAMP)  ## create .venv with the pinned environment and register the Jupyter kernel (GPU=1: TensorFlow's CUDA build)
ifeq ($(GPU),1)
	$(PY) -m pip install --quiet -e ".[dev,gpu]"
	$(PY) -c "import tensorflow as tf; print('GPUs visible to TensorFlow:', tf.config.list_physical_devices('GPU') or 'none (check nvidia-smi and the driver)')"
endif

book: $(STAMP)  ## run every chapter of PROFILE (skipping unchanged ones) and build the HTML book
	$(PY) -m forgetting_aus.runner --profile $(PROFILE) $(SET_ARGS) --build

chapter: $(STAMP)  ## rerun one chapter (CH=03) of PROFILE, then rebuild the book
	@test -n "$(CH)" || (echo "usage: make chapter CH=03 [PROFILE=default] [SET=\"knob=value\"]"; exit 2)
	$(PY) -m forgetting_aus.runner --profile $(PROFILE) --only $(CH) $(SET_ARGS) --build

check: $(STAMP)  ## preflight of PROFILE on the real datasets: roots, weights, GPU, disk, memory (seconds)
	$(PY) -m forgetting_aus.preflight --profile $(PROFILE) $(SET_ARGS)

test: $(STAMP)  ## unit tests and a smoke build of the whole book (params/smoke.yml)
	$(PY) -m pytest -q

test-unit: $(STAMP)  ## unit tests only (no smoke book)
	$(PY) -m pytest -q -m "not slow"

sync: $(STAMP)  ## pair notebooks/NN_*.py (py:percent) with .ipynb through jupytext
	$(VENV)/bin/jupytext --sync notebooks/*.py

lint: $(STAMP)  ## ruff over src, tests, notebooks
	$(VENV)/bin/ruff check src tests notebooks scripts

bench: $(STAMP)  ## time the stages and write bench/results.json (see README)
	$(PY) scripts/bench.py --out bench/results.json

bench-scale: $(STAMP)  ## memory and disk of the paper-shaped data path at 1 000-4 000 images: bench/scale.json (~25 min)
	$(PY) scripts/bench_scale.py --out bench/scale.json

clean:  ## remove the built books (_build/<profile>/) and bench output (keeps results/ and .venv)
	rm -rf _build book/chapters bench
	@echo "results/ (cached models and artifacts) kept; 'rm -rf results' retrains everything"
