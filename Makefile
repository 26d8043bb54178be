# reclake: `make demo` runs the whole pipeline on ML-100K; `make test` runs the tests.
# Both create .venv from pyproject.toml + constraints.txt (every package pinned) when it is missing or
# older than either; `make help` lists the targets.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reclake-installed
TEST_STAMP := $(VENV)/.reclake-test-installed
RECLAKE_HOME ?= $(CURDIR)/.reclake
export RECLAKE_HOME
export DAGSTER_HOME ?= $(RECLAKE_HOME)/dagster
PYTEST_ARGS ?=

.PHONY: help demo test lint format browsers ui mlflow-ui serve-model ask-server bench-ask venv bench-simulator bench bench-online bench-train bench-models bench-serving bench-engines clean-state

help:
	@echo "make demo          the whole pipeline on ML-100K with the embedded LLM, then its last 7 days replayed"
	@echo "                   day by day (docs/daily.md), into RECLAKE_HOME (default ./.reclake)"
	@echo "make test          ruff (lint + format check), then unit, integration and browser tests"
	@echo "make format        ruff format + ruff check --fix over the tree"
	@echo "make ui            Dagster UI on http://127.0.0.1:3000 (schedule, sensors, run queue)"
	@echo "make mlflow-ui     MLflow UI on http://127.0.0.1:5000 (runs, plots, registry)"
	@echo "make serve-model   the champion behind 'mlflow models serve' on http://127.0.0.1:5001"
	@echo "make ask-server    'reclake ask' over HTTP: POST /ask and a small page on http://127.0.0.1:8012"
	@echo "make bench         ingest + transform benchmark; bench-online, bench-train, bench-models,"
	@echo "                   bench-serving, bench-engines, bench-simulator, bench-ask: see docs/testing.md"
	@echo "make clean-state   delete RECLAKE_HOME (a full reset)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "reclake: installing the pinned environment into $(VENV) (first time: several minutes; pip names each package)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -e . -c constraints.txt
	touch $(STAMP)

# the test extra (pytest, selenium, import-linter, ruff): only `make test` and `make lint` install it
$(TEST_STAMP): $(STAMP)
	@echo "reclake: installing the test extra (pytest, selenium, import-linter, ruff)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]' -c constraints.txt
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/reclake demo

# Debian's headless Chromium + ChromeDriver for the browser tests (tests/test_ui.py); they are
# skipped, saying so, when these cannot be installed (no root, no apt).
browsers:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
	  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || \
	  echo "make browsers: could not install chromium + chromium-driver; the browser tests will be skipped" >&2

# ruff: the lint and the format check run before the tests, and either failing fails `make test`
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collected no tests: treat that as a failure, not a pass.
test: $(TEST_STAMP) lint browsers
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# `dg dev` with the venv activated (VIRTUAL_ENV, PATH): dg runs the project's code in .venv
ui: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev -h 127.0.0.1 -p 3000

# MLflow's UI over the runs and registry of the data home (127.0.0.1 only)
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(RECLAKE_HOME)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

# the champion behind MLflow's own scoring server (POST /invocations), 127.0.0.1 only
serve-model: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH MLFLOW_TRACKING_URI=sqlite:///$(RECLAKE_HOME)/mlflow/mlflow.db \
	  RECLAKE_FEATURE_REPO=$(CURDIR)/feature_repo \
	  $(BIN)/mlflow models serve -m "models:/reclake-recommender@champion" --env-manager local -h 127.0.0.1 -p 5001

bench: $(STAMP)
	$(BIN)/python bench/ingest_transform.py

bench-online: $(STAMP)
	$(BIN)/python bench/online_lookup.py

# after `make demo`: training throughput (CPU 1/2 threads, CUDA when present) and quality over 3 seeds
bench-train: $(STAMP)
	$(BIN)/python bench/train_throughput.py --home $(RECLAKE_HOME)

bench-models: $(STAMP)
	$(BIN)/python bench/model_quality.py --home $(RECLAKE_HOME) --seeds 0 1 2

# synthetic 100k users x 20k items: the batch scorer vs a raw torch loop, time and peak memory
bench-serving: $(STAMP)
	$(BIN)/python bench/batch_scoring.py

# DuckDB vs Spark at 1M and 10M synthetic interactions: ingest + transform and batch scoring (~30 min on 2 cores)
bench-engines: $(STAMP)
	$(BIN)/python bench/engines.py

# after `make demo`: the simulated users' validation per simulator (tuned, zero-shot SmolLM2), ~10 min
bench-simulator: $(STAMP)
	$(BIN)/python bench/simulator.py --home $(RECLAKE_HOME) --kinds probe zero-shot:smollm2-135m

# requests in words (POST /ask) and a small page, over the data home's champion (127.0.0.1 only)
ask-server: $(STAMP)
	$(BIN)/reclake ask-server --host 127.0.0.1 --port 8012

# after `make demo`: reclake ask's parsers on requests built from held-out films (docs/ask.md), ~15 min
bench-ask: $(STAMP)
	$(BIN)/python bench/ask.py --home $(RECLAKE_HOME) --parsers rules rules+qwen2.5-coder-0.5b qwen2.5-coder-0.5b

clean-state:
	rm -rf $(RECLAKE_HOME)
