# The two commands of the README:  `make run` (install + the main job)  and  `make test` (install + tests).
# Everything installs into the project-local .venv; a second `make install` is a no-op.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -c requirements/constraints.txt
STAMP := $(VENV)/.ld-installed
JOBS ?= $(shell nproc)
# The pipeline's commands (`ld`, `dvc`, `papermill`) are the environment's: put it first on PATH, so a
# plain `make run` works without activating it (and never picks binutils' `ld`).
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install browser run lint test test-fast kernel clean-venv

install: $(STAMP)

$(STAMP): requirements/build.txt requirements/mmcv.txt requirements/mmcv_build_env.py requirements/run.txt requirements/constraints.txt pyproject.toml
	@echo "== install into $(VENV) (mmcv's ops compile once, ~10 min on 2 cores; pip caches the wheel)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements/build.txt
	# mmcv's ops for the CPU, plus its CUDA ops where torch has CUDA (requirements/mmcv_build_env.py)
	MMCV_ENV="$$($(BIN)/python requirements/mmcv_build_env.py)" && echo "== mmcv build: $$MMCV_ENV MAX_JOBS=$(JOBS)" && \
	  env $$MMCV_ENV MAX_JOBS=$(JOBS) $(PIP) --no-build-isolation -r requirements/mmcv.txt
	$(PIP) -r requirements/run.txt
	$(PIP) --no-build-isolation --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name ld-workspace --display-name "ld-workspace (.venv)"
	$(BIN)/python -c "import mmcv.ops, mmdet, ld, ld.models.mmcv_cuda as c; print('mmcv ops (CUDA ops: %s), mmdet %s and ld import' % (c.cuda_ops_compiled(), mmdet.__version__))"
	touch $@

# Chromium, the one system package the tests use (tests/results/test_plots_offline.py opens `dvc plots show`'s
# page headless, offline; skipped without it): Debian's, ~20 s and 113 MB, where apt-get can install it.
browser:
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || { \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; echo "== apt-get install chromium (~20 s, 113 MB)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
	  echo "== chromium could not be installed: tests/results/test_plots_offline.py's browser checks will be skipped"; }

# The main job: the whole pipeline on params.yaml's profile (default: smoke; `ld stage-times` is `dvc repro`
# followed by where its time went, per stage), then its models and data pushed to the DVC remote
# (.dvc/config: a folder beside the clone, unless .dvc/config.local says otherwise), so another clone gets
# them with `dvc pull` instead of training.
run: install
	ld stage-times
	dvc push

# ruff (pyproject.toml's rules) over the code, tests, pipelines and notebooks; `make test` runs it first.
lint: install
	$(BIN)/ruff check .

# Two workers (pytest-xdist), a test file each at a time, in tests/conftest.py's order (the longest first, not
# xdist's by number of tests): the smoke `dvc repro` of tests/e2e/test_pipeline.py starts at once on one, the rest
# runs beside it; a test's results do not depend on what runs beside it (same torch threads). Four OpenMP
# threads on two cores: waiting threads sleep instead of spinning (else small-op loops run 3.5x slower).
test: install browser lint
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

# The quick tests: everything but the end-to-end runs marked slow (minutes each: dvc repro, DDP, resume).
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean-venv:
	rm -rf $(VENV)
