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

.PHONY: install lock demo test bench weights clean-state paper parallel slurm test-slurm slurm-packages rehearsal gpu-check

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# The locked environment: every package at the version in requirements.lock (see `make lock`).
PIP_VERSION := 26.3
LOCK := requirements.lock

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Re-resolve requirements.lock: the newest versions pyproject.toml allows, in a scratch environment.
# Then rerun the pipeline and commit requirements.lock with the dvc.lock it produces.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV) || python3 -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(LOCK_VENV)/bin/python -m pip install --quiet ".[test]"
	sed -n '/^#/p' $(LOCK) > $(LOCK).new
	$(LOCK_VENV)/bin/python -m pip freeze --all --exclude pip --exclude cxrtransfer >> $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV) build

# The demo runs the model stages on two single-threaded workers: on 2 CPU cores that is about 1.4x
# faster than one two-threaded `dvc repro` (measured in benchmarks); plain `dvc repro` gives the same result.
demo: install
	cxrtransfer parallel --workers 2
	@echo "report: reports/summary.md. Before any dvc command: source $(BIN)/activate (then e.g. dvc metrics show)"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.run

# On a machine with internet: fetch timm's pinned ImageNet weights into weights/ and track them with DVC.
weights: install
	cxrtransfer weights export --all --out weights
	dvc add weights

clean-state:
	rm -rf .state

# The paper's configuration on real CheXpert (GPUs): prints stages, models, FLOPs and device-hours first, then
# trains on every visible GPU, MODELS_PER_GPU at a time on each. Two processes: the measuring one (and its
# CUDA context) is gone before the workers start.
MODELS_PER_GPU ?= 1
paper: install
	cxrtransfer paper --data-root "$(DATA_ROOT)" --measure
	cxrtransfer parallel --models-per-gpu $(MODELS_PER_GPU)

# The paper configuration rehearsed on CPU in a new folder (never this checkout): configs/paper.yaml changed
# only by named scale knobs, full-size synthetic CheXpert with real label rows, through report, then checked.
REHEARSAL ?= large
REHEARSAL_DIR ?= $(shell mktemp -d -u /tmp/cxrtransfer-rehearsal.XXXXXX)
rehearsal: install
	cxrtransfer rehearsal --preset $(REHEARSAL) --workdir "$(REHEARSAL_DIR)"

# On a lent GPU machine (no install, no DVC; ../shared/gpu-machine.md): its python3 with the checkout on
# PYTHONPATH measures the training path on the GPU into benchmarks/results/gpu-<device>.json.
GPU_CHECK_OUT ?= benchmarks/results
gpu-check:
	PYTHONPATH=. python3 -m cxrtransfer gpu-check --out "$(GPU_CHECK_OUT)"

# The model stages on every visible GPU (or GPUS=0,1,...), MODELS_PER_GPU at a time on each; without GPUs
# on WORKERS CPU workers. Then the study-level stages.
WORKERS ?= 2
parallel: install
	cxrtransfer parallel --workers $(WORKERS) --gpus "$(GPUS)" --models-per-gpu $(MODELS_PER_GPU)

# The model stages as SLURM jobs (one per stage) and the study as one job after them: README "SLURM".
# Resources: SLURM_ARGS="--partition gpu --gpus-per-job 1 --cpus-per-job 8 --mem 32G --time 24:00:00".
SLURM_ARGS ?=
slurm: install
	cxrtransfer slurm $(SLURM_ARGS)

# Debian's SLURM and munge (as root), then the test that starts a single-node cluster and runs a tiny grid on it.
slurm-packages:
	command -v slurmctld >/dev/null || command -v /usr/sbin/slurmctld >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null)

test-slurm: install slurm-packages
	$(BIN)/python -m pytest -q -rs tests/e2e/test_slurm.py
