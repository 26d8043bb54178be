# reclake: `make demo` runs the whole pipeline on ML-100K; `make test` runs the tests.
# Both create .venv from the pinned pyproject.toml when it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reclake-installed
RECLAKE_HOME ?= $(CURDIR)/.reclake
export RECLAKE_HOME
export DAGSTER_HOME ?= $(RECLAKE_HOME)/dagster
PYTEST_ARGS ?=

.PHONY: demo test browsers ui mlflow-ui venv bench bench-online bench-train bench-models bench-serving bench-engines clean-state

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/reclake demo

# Debian's headless Chromium + ChromeDriver for the browser tests (tests/test_ui.py); they are
# skipped, saying so, when these cannot be installed (no root, no apt).
browsers:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
	  (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || \
	  echo "make browsers: could not install chromium + chromium-driver; the browser tests will be skipped" >&2

# pytest exits 5 when it collected no tests: treat that as a failure, not a pass.
test: $(STAMP) browsers
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

ui: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dagster dev -h 127.0.0.1 -p 3000

# MLflow's UI over the runs and registry of the data home (127.0.0.1 only)
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(RECLAKE_HOME)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

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

clean-state:
	rm -rf $(RECLAKE_HOME)
