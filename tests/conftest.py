"""Shared fixtures: real datasets from ../shared/datasets, a fresh data home per test, the real job."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.settings import REPO_ROOT, configure_process_env, parse_dbt_project

SHARED_DATASETS = Path(os.environ.get("RECLAKE_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
ML100K_DIR = SHARED_DATASETS / "ml-100k"
ML_LATEST_SMALL_DIR = SHARED_DATASETS / "ml-latest-small"
AMAZON_FILE = SHARED_DATASETS / "amazon2018-all-beauty-5core" / "All_Beauty_5.json.gz"

configure_process_env()
parse_dbt_project()  # the manifest must match the SQL before orchestration.definitions is imported


def pytest_sessionstart(session):
    if not ML100K_DIR.exists():
        raise pytest.UsageError(f"test data not found: {ML100K_DIR} (set RECLAKE_SHARED_DATASETS)")


@dataclass
class PipelineRun:
    result: object
    seconds: float
    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"


def run_pipeline(home: Path, dataset: str = "ml-100k", data_dir: Path | None = None,
                 rating_scale: str | None = None, monkeypatch=None) -> PipelineRun:
    """Materialize the real `reclake_pipeline` job into ``home`` and time it."""
    import dagster as dg

    from orchestration.definitions import PIPELINE_JOB, build_defs
    from orchestration.resources import LakeResource

    if monkeypatch is not None:
        monkeypatch.setenv("RECLAKE_HOME", str(home))  # restored after the test (dbt reads it)
    lake = LakeResource(home=str(home), dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                        rating_scale=rating_scale)
    job = build_defs(lake).resolve_job_def(PIPELINE_JOB)
    started = time.monotonic()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    return PipelineRun(result, time.monotonic() - started, home)


def query(warehouse: Path, sql: str, params=None):
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
