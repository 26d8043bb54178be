"""The `reclake` console script, run the way a user runs it (a subprocess with a fresh data home)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.data import ML100K_DIR, TEST_MODEL_CACHE
from support.pipelines import query

RECLAKE = str(Path(sys.executable).parent / "reclake")


def run_cli(args, home, **env):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECLAKE_", "DAGSTER_HOME"))
    }
    environment.update({"RECLAKE_HOME": str(home), **env})
    return subprocess.run(
        [RECLAKE, *args], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.integration
def test_demo_runs_the_whole_pipeline_and_records_the_run(tmp_path):
    home = tmp_path / "home"
    done = run_cli(
        ["demo"],
        home,
        RECLAKE_DATA_DIR=str(ML100K_DIR),
        RECLAKE_LLM_MODEL_CACHE=str(TEST_MODEL_CACHE),
        RECLAKE_LLM_MAX_ITEMS="2",
        RECLAKE_LLM_MAX_USERS="2",
        RECLAKE_LLM_BATCH_SIZE="2",
        RECLAKE_TRAIN_MAX_EPOCHS="1",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "fct_interactions              100,000 rows" in done.stdout
    assert "check fct_interactions.raw_rows_reconcile: passed" in done.stdout
    assert "make ui" in done.stdout
    assert (
        "gate: promote (no champion yet" in done.stdout
        and "mlflow ui --backend-store-uri" in done.stdout
    )
    assert query(home / "warehouse.duckdb", "select count(*) from splits where split = 'test'") == [
        (943,)
    ]
    # the run is in the Dagster instance under RECLAKE_HOME, where the UI reads it
    assert (home / "dagster" / "dagster.yaml").exists()
    assert (home / "dagster" / "history" / "runs.db").exists()


def test_version_names_the_installed_package(tmp_path):
    from importlib.metadata import version

    done = run_cli(["--version"], tmp_path / "home")
    assert done.returncode == 0 and done.stdout.strip() == f"reclake {version('reclake')}"


def test_unknown_dataset_fails_with_one_clear_line(tmp_path):
    done = run_cli(["demo"], tmp_path / "home", RECLAKE_DATASET="no-such-dataset")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "reclake: RECLAKE_DATASET='no-such-dataset': unknown dataset. Use one of ml-100k, ml-latest-small, "
        "amazon-reviews or the path of a folder holding interactions.csv|parquet"
    )
    assert "Traceback" not in done.stderr


def test_bad_file_fails_naming_file_and_column(tmp_path):
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "interactions.csv").write_text("user,item_id,timestamp\nu1,i1,100\n")
    done = run_cli(["demo"], tmp_path / "home", RECLAKE_DATASET=str(folder))
    assert done.returncode == 1
    assert f"{folder}/interactions.csv: missing required column(s) 'user_id'" in done.stderr
    assert "the pipeline FAILED" in done.stderr


def test_paths_lists_state_under_the_data_home(tmp_path):
    done = run_cli(["paths"], tmp_path / "home", RECLAKE_DATA_DIR=str(ML100K_DIR))
    assert done.returncode == 0
    assert f"warehouse  {tmp_path / 'home' / 'warehouse.duckdb'}" in done.stdout
    import json

    as_json = json.loads(
        run_cli(["paths", "--json"], tmp_path / "home", RECLAKE_DATA_DIR=str(ML100K_DIR)).stdout
    )
    assert as_json["warehouse"] == str(tmp_path / "home" / "warehouse.duckdb")


def test_config_lists_every_setting_and_the_docs_table_is_its_output(tmp_path):
    from orchestration.core.settings import REPO_ROOT, VARIABLES

    shown = run_cli(["config"], tmp_path / "home", RECLAKE_SIM_USERS="50")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert set(lines) == {v.name for v in VARIABLES}
    assert lines["RECLAKE_SIM_USERS"].split()[1:] == [
        "per-run",
        "50",
        "(default",
        "200)",
        "run",
        "config:",
        "simulated_feedback.n_users",
    ]
    assert lines["RECLAKE_SERVING_TOP_K"].split()[1:] == ["deployment", "20", "(default)"]
    table = (
        run_cli(["config", "--markdown"], tmp_path / "home", RECLAKE_SIM_USERS="50")
        .stdout.strip()
        .splitlines()
    )
    documented = [
        line
        for line in (REPO_ROOT / "docs" / "configuration.md").read_text().splitlines()
        if line.startswith("|")
    ]
    assert table == documented, (
        "docs/configuration.md is stale: regenerate its table with `reclake config --markdown`"
    )
