# runner: `make run` reproduces the notes' five sweeps, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXPERIMENTS ?= normalization optimizer learning_rate activation initializer
comma := ,
space := $(empty) $(empty)

.DEFAULT_GOAL := help
.PHONY: help install install-dev run reproduce report browser test test-all lint format clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

EXTRAS ?=
install: $(VENV)/.installed ## Create .venv and install runner (EXTRAS="tensorboard mlflow" adds extras)
ifneq ($(strip $(EXTRAS)),)
	$(PY) -m pip install --quiet -e '.[$(subst $(space),$(comma),$(strip $(EXTRAS)))]'
endif

install-dev: $(VENV)/.installed-dev ## Create .venv and install runner with the test tools

run: install ## Run the notes' sweeps (normalization, optimizer, learning_rate, activation, initializer)
	$(PY) -m runner -m experiment=$(subst $(space),$(comma),$(strip $(EXPERIMENTS))) $(ARGS)
	@printf "\nDone: each sweep's summary.csv and comparison plots are in results/<experiment>/<timestamp>/\n"

reproduce: install ## Run every experiment over seeds 0-29 (resuming), then build results/report/
	$(PY) -m runner reproduce $(ARGS)

report: install ## Rebuild results/report/ from the results on disk (no training)
	$(PY) -m runner report results

# The report's browser test needs Debian's chromium and chromium-driver; SKIP_BROWSER=1 skips this step.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
browser: ## Install headless Chromium for the report's browser test (Debian/Ubuntu)
	@if [ -n "$(SKIP_BROWSER)" ] || { command -v chromium && command -v chromedriver; } >/dev/null; then :; else \
	  echo "Installing chromium and chromium-driver with apt-get..."; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

test: install-dev browser ## Run the test suite (slow end-to-end tests excluded)
	$(PY) -m pytest -q

test-all: install-dev browser ## Run every test, the slow ones too
	$(PY) -m pytest -q -m ''

lint: install-dev ## Check formatting and lint with ruff
	$(PY) -m ruff format --check runner hydra_plugins tests benchmarks
	$(PY) -m ruff check runner hydra_plugins tests benchmarks

format: install-dev ## Format the code with ruff
	$(PY) -m ruff format runner hydra_plugins tests benchmarks
	$(PY) -m ruff check --fix runner hydra_plugins tests benchmarks

clean: ## Remove results and caches (keeps .venv)
	rm -rf results/*/ .pytest_cache .ruff_cache build *.egg-info
