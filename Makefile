# Two commands on a fresh machine: `make demo` and `make test`.
# Without an active virtual environment, everything goes into .venv.
ifdef VIRTUAL_ENV
  VENV := $(VIRTUAL_ENV)
else
  VENV := .venv
endif
BIN := $(VENV)/bin
PYTHON ?= python3.11
STAMP := $(VENV)/.installed
# DVC stage commands call `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test bench weights clean-state paper parallel

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: install
	dvc repro
	@echo "report: reports/summary.md; metrics: dvc metrics show"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.run

# On a machine with internet: fetch timm's pinned ImageNet weights into weights/ and track them with DVC.
weights: install
	$(BIN)/python -m cxrtransfer.weights export --all --out weights
	dvc add weights

clean-state:
	rm -rf .state

# The paper's configuration on real CheXpert (GPUs): prints stages, models and estimated device-hours first.
paper: install
	python -m cxrtransfer.lab paper --data-root "$(DATA_ROOT)" --measure --run

# The model stages on WORKERS local workers, one GPU each (GPUS=0,1,...), then the study-level stages.
WORKERS ?= 2
parallel: install
	python -m cxrtransfer.lab parallel --workers $(WORKERS) --gpus "$(GPUS)"
