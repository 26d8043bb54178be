"""The `reclake` console script, run the way a user runs it (a subprocess with a fresh data home)."""

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support.data import ML100K_DIR, TEST_MODEL_CACHE
from support.pipelines import query

RECLAKE = str(Path(sys.executable).parent / "reclake")


def run_cli(args, home, timeout=600, **env):
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECLAKE_", "DAGSTER_HOME"))
    }
    environment.update({"RECLAKE_HOME": str(home), **env})
    return subprocess.run(
        [RECLAKE, *args], capture_output=True, text=True, env=environment, timeout=timeout
    )


@pytest.mark.integration
def test_demo_runs_the_whole_pipeline_then_replays_the_held_back_days(tmp_path):
    """The daily demo with its last day held back: the history as one backfill, the pipeline once,
    the day replayed (a line and a days.parquet row), then the retrain on the whole dataset, whose
    split is RecBole's (943 test users). Chains of several days are tests/test_daily_loop.py's."""
    home = tmp_path / "home"
    done = run_cli(
        ["demo", "--replay-days", "1"],
        home,
        timeout=1500,  # the pipeline runs twice (before and after the replay): ~8 min alone
        RECLAKE_JUDGE_USERS="20",
        RECLAKE_SIM_USERS="20",
        RECLAKE_DATA_DIR=str(ML100K_DIR),
        RECLAKE_LLM_MODEL_CACHE=str(TEST_MODEL_CACHE),
        RECLAKE_LLM_MAX_ITEMS="2",
        RECLAKE_LLM_MAX_USERS="2",
        RECLAKE_LLM_BATCH_SIZE="2",
        RECLAKE_TRAIN_MAX_EPOCHS="1",
        RECLAKE_NIGHTLY_RETRAIN="1",
        RECLAKE_PROTOCOLS="0",  # the protocol refits are the ML-100K fixture's to test
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # ML-100K's history before 1998-04-22: every event but the last day's 536
    assert f"{'fct_interactions':<28}{99_464:>9,} rows" in done.stdout
    assert "check fct_interactions.raw_rows_reconcile: passed" in done.stdout
    assert "make ui" in done.stdout
    assert "gate: " in done.stdout and "mlflow ui --backend-store-uri" in done.stdout
    days = [line.split() for line in done.stdout.splitlines() if line.startswith("1998-04-2")]
    assert [(d[0], int(d[1])) for d in days] == [("1998-04-22", 536)]
    replayed = pq.read_table(home / "lake" / "replay" / "days.parquet").to_pylist()
    assert [(r["date"], r["events"], r["quarantined"]) for r in replayed] == [
        ("1998-04-22", 536, 0)
    ]
    # the night retrains: the sequential models warm-start from the version before, the gate runs
    for row in replayed:
        assert row["retrained"] == "llm_sasrec warm, sasrec warm"
        assert row["champion"] and row["gate"]
    assert all(" champion " in " ".join(d) for d in days)
    assert query(home / "warehouse.duckdb", "select count(*) from fct_interactions") == [(100_000,)]
    assert query(home / "warehouse.duckdb", "select count(*) from splits where split = 'test'") == [
        (943,)
    ]
    assert_lists_come_from_the_past(home, "1998-03-01")
    assert_served_lists_are_scored_by_the_next_day(home, "1998-04-22", replayed[-1])


def assert_served_lists_are_scored_by_the_next_day(home: Path, day: str, row: dict) -> None:
    """The lists served on `day` (and its shadows) against that day's events, recomputed in SQL."""
    import json

    outcomes = home / "lake" / "outcomes" / f"date={day}"
    summary = json.loads((outcomes / "summary.json").read_text())
    served = str(home / "lake" / "recommendations" / f"date={day}" / "recommendations.parquet")
    # ML-100K has no repeated (user, item): every event of the day is new to its user
    (users, hit_rate), = query(
        home / "warehouse.duckdb",
        "with day as (select user_id, item_id from fct_interactions where event_ts >= ? and "
        "event_ts < cast(? as date) + 1), lists as (select * from read_parquet(?) where rank <= 10) "
        "select count(*), avg(hit) from (select user_id, max(case when d.item_id is not null then "
        "1.0 else 0.0 end) as hit from lists l left join day d using (user_id, item_id) "
        "where user_id in (select user_id from day) group by user_id)",
        [day, day, served],
    )  # fmt: skip
    by_role = {m["role"] for m in summary["by_model"].values()}
    assert by_role == {"served", "shadow"} and "popularity_7d" in summary["by_model"]
    champion = next(m for m in summary["by_model"].values() if m["role"] == "served")
    assert summary["n_users"] == users > 0
    assert champion["hit_at_10"] == pytest.approx(hit_rate, abs=1e-4)
    assert row["served_hit_at_10"] == champion["hit_at_10"] and row["scored_users"] == users
    assert (outcomes / "hit_at_10.png").stat().st_size > 0
    per_user = pq.read_table(outcomes / "per_user.parquet").to_pandas()
    assert set(per_user.groupby("model_name")["user_id"].nunique()) == {users}


def assert_lists_come_from_the_past(home: Path, day: str) -> None:
    """The champion now knows every film, but the lists served on an earlier day hold only films
    and users seen before it, and each user's list excludes what they had seen by then."""
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import build_defs

    lake = LakeResource(home=str(home), dataset="ml-100k", data_dir=str(ML100K_DIR))
    job = build_defs(lake).resolve_job_def("serve_lists")
    with dg.DagsterInstance.ephemeral() as instance:
        assert job.execute_in_process(instance=instance, partition_key=day).success
    lists = str(home / "lake" / "recommendations" / f"date={day}" / "recommendations.parquet")
    firsts = "(select item_id, min(event_ts) as first from fct_interactions group by 1)"
    warehouse = home / "warehouse.duckdb"
    assert query(warehouse, f"select count(*) from read_parquet(?) join {firsts} using (item_id) "
                 "where first < ?", [lists, day])[0][0] > 0  # fmt: skip
    assert query(warehouse, f"select count(*) from read_parquet(?) join {firsts} using (item_id) "
                 "where first >= ?", [lists, day]) == [(0,)]  # fmt: skip
    assert query(
        warehouse, "select count(distinct user_id) from read_parquet(?)", [lists]
    ) == query(
        warehouse,
        "select count(distinct user_id) from fct_interactions where event_ts < ?",
        [day],
    )
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
    # the daily demo reads the file to cut it into days: a bad input, named, before any run
    done = run_cli(["demo"], tmp_path / "home", RECLAKE_DATASET=str(folder))
    assert done.returncode == 2
    assert f"{folder}/interactions.csv: missing required column(s) 'user_id'" in done.stderr
    # one run on the whole file: the ingest step fails, naming it
    done = run_cli(["demo", "--replay-days", "0"], tmp_path / "home", RECLAKE_DATASET=str(folder))
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
