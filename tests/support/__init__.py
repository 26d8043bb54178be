"""Helpers the tests share; the fixtures built on them stay in tests/conftest.py, where pytest
finds them.

- ``data``: where the real datasets are (ML100K_DIR, ...), the test model cache, the partition every
  test uses (TODAY), slices of ML-100K.
- ``pipelines``: the real Dagster job run for a test (run_pipeline, tiny_llm, tiny_training), the
  `reclake` CLI, what a run leaves (its warehouse, its materializations).
- ``servers``: free ports, waiting for HTTP, stopping servers, listening on loopback only.
- ``corpus``: the generated malformed-input corpus, in every dataset format.

Importing the package sets the process up the way every test runs, before any of its modules (or a
test module) imports dagster or the definitions; conftest.py imports it first thing.
"""

import os

from orchestration.core.settings import apply_process_switches, parse_dbt_project

# The tuned judge reads item cards with the ladder's smallest model in tests (the product's default is
# Qwen2.5-Coder-0.5B, a 491 MB download and ~3x the reading time; docs/judge.md).
os.environ.setdefault("RECLAKE_JUDGE_EMBEDDED_MODEL", "smollm2-135m")

apply_process_switches()
parse_dbt_project()  # the manifest must match the SQL before orchestration.definitions is imported
