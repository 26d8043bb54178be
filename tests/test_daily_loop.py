"""The daily loop on a small real slice (ML-100K's last 18 days, every user active in them): days
landed one at a time give the warehouse one full load of the same days gives, a re-delivery changes
nothing, a corrected day changes that day only, an empty day is a day, a malformed file stops its
own day only, and the landing sensor asks for exactly the runs the landed files call for.

The runs are the real `ingest_transform` job (raw files, dbt with its tests, the blocking checks)
partitioned by day; each takes ~10 s, most of it dbt starting up."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import ML100K_DIR
from support.pipelines import CONTRACT_TABLES, query

from orchestration.core.spark import java_missing

FIRST_DAY = "1998-04-05"


def write_last_days(folder: Path) -> Path:
    """ML-100K's interactions from FIRST_DAY on (RecBole format), with every item and user."""
    import datetime as dt

    cutoff = dt.datetime.fromisoformat(FIRST_DAY).replace(tzinfo=dt.UTC).timestamp()
    folder.mkdir(parents=True)
    for name in ("ml-100k.item", "ml-100k.user"):
        shutil.copy(ML100K_DIR / name, folder / name)
    lines = (ML100K_DIR / "ml-100k.inter").read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if int(line.split("\t")[3]) >= cutoff]
    (folder / "ml-100k.inter").write_text(lines[0] + "".join(kept))
    return folder


class Home:
    """One data home on the slice, its Dagster instance, and the warehouse job partitioned by day."""

    def __init__(self, root: Path, data: Path):
        from orchestration.core.resources import LakeResource
        from orchestration.defs.ingest.landing import cut_into_days

        self.lake = LakeResource(home=str(root), dataset="ml-100k", data_dir=str(data))
        self.paths, self.name = self.lake.paths, "ml-100k"
        self.cut = cut_into_days(self.lake.spec(), data)
        self.instance = dg.DagsterInstance.ephemeral()

    def land(self, *days: str) -> None:
        from orchestration.defs.ingest.landing import land_day

        for day in days:
            land_day(self.paths, self.name, self.cut, day)

    def run(self, first: str, last: str | None = None):
        """The warehouse job for one day, or for a range of days as one run."""
        from orchestration.definitions import WAREHOUSE_JOB, build_defs
        from orchestration.defs.ingest.sensors import RANGE_END, RANGE_START

        job = build_defs(self.lake).resolve_job_def(WAREHOUSE_JOB)
        if last is None:
            return job.execute_in_process(
                instance=self.instance, raise_on_error=False, partition_key=first
            )
        return job.execute_in_process(
            instance=self.instance,
            raise_on_error=False,
            tags={RANGE_START: first, RANGE_END: last},
        )

    def tables(self, where: dict[str, str] | None = None) -> dict[str, str]:
        """md5 of every contract table's rows sorted on all columns (optionally a filter per table)."""
        where = where or {}
        return {
            t: query(
                self.paths.warehouse,
                f"select md5(string_agg(r, '|' order by r)) from (select cast(x as varchar) as r "
                f"from main.{t} x {where.get(t, '')})",
            )[0][0]
            for t in CONTRACT_TABLES
        }


@pytest.fixture(scope="module")
def slice_folder(tmp_path_factory) -> Path:
    return write_last_days(tmp_path_factory.mktemp("last-days") / "ml-100k")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, slice_folder):
    """The slice landed and run day by day: its first 12 days as one backfill, then 6 single days."""
    home = Home(tmp_path_factory.mktemp("daily") / "home", slice_folder)
    days = home.cut.days
    assert len(days) == 18 and days[0] == FIRST_DAY
    home.land(*days[:12])
    assert home.run(days[0], days[11]).success
    for day in days[12:]:
        home.land(day)
        assert home.run(day).success
    return home


@pytest.fixture(scope="module")
def full_load(tmp_path_factory, slice_folder):
    """The same 18 days landed at once and run as one backfill."""
    home = Home(tmp_path_factory.mktemp("full") / "home", slice_folder)
    home.land(*home.cut.days)
    assert home.run(home.cut.days[0], home.cut.days[-1]).success
    return home


def test_days_replayed_one_by_one_give_the_tables_of_one_full_load(replayed, full_load):
    """Invariant (a), on every contract table, rows sorted and hashed."""
    assert query(replayed.paths.warehouse, "select count(*) from fct_interactions")[0][0] > 4000
    assert replayed.tables() == full_load.tables()
    # and the split is the protocol's over the whole slice: one test row per user with >= 3 events
    assert query(
        replayed.paths.warehouse,
        "select count(*) = count(distinct user_id) from splits where split = 'test'",
    ) == [(True,)]


def test_the_same_file_dropped_twice_changes_nothing(replayed):
    """Invariant (b): the sensor's rule finds nothing due, and re-running the day changes no row."""
    from orchestration.defs.ingest.landing import ingested_days
    from orchestration.defs.ingest.sensors import day_hashes, due_runs

    day = replayed.cut.days[14]
    before = replayed.tables()
    replayed.land(day)  # the producer delivers the same file again
    hashes, _ = day_hashes(replayed.paths, replayed.name, {})
    assert due_runs(hashes, ingested_days(replayed.paths, replayed.name)) == []
    assert replayed.run(day).success
    assert replayed.tables() == before


def test_a_corrected_file_for_a_past_day_updates_that_day_and_its_dependents_only(replayed):
    """Invariant (c): one rating changed and one row withdrawn on a past day: that day's rows
    change, every other day's rows stay, and only that day's users' splits move."""
    from orchestration.defs.ingest.landing import ingested_days
    from orchestration.defs.ingest.sensors import day_hashes, due_runs

    days = replayed.cut.days
    day = days[5]
    path = replayed.paths.landing_day(replayed.name, day) / "interactions.parquet"
    data = pq.read_table(path)
    users_of_day = set(data.column("user_id").to_pylist())
    others = {
        "fct_interactions": f"where landed_date <> '{day}'",
        "quarantine_interactions": f"where landed_date <> '{day}'",
        "splits": "where user_id not in ({})".format(",".join(f"'{u}'" for u in users_of_day)),
    }
    before = replayed.tables(others)
    ratings = data.column("rating").to_pylist()
    ratings[0] = "1" if ratings[0] != "1" else "2"
    corrected = data.set_column(data.schema.get_field_index("rating"), "rating", pa.array(ratings))
    pq.write_table(corrected.slice(0, data.num_rows - 1), path)

    hashes, _ = day_hashes(replayed.paths, replayed.name, {})
    due = due_runs(hashes, ingested_days(replayed.paths, replayed.name))
    assert [run["days"] for run in due if run["job"] == "daily_update"] == [[day]]
    assert replayed.run(day).success
    after = replayed.tables(others)
    for table in ("fct_interactions", "quarantine_interactions", "splits"):
        assert after[table] == before[table], f"{table} changed outside {day}"
    rows = query(
        replayed.paths.warehouse,
        "select count(*), sum(rating) from fct_interactions where landed_date = ?",
        [day],
    )[0]
    assert rows[0] == data.num_rows - 1
    kept = [float(r) for r in ratings[: data.num_rows - 1]]
    assert rows[1] == pytest.approx(sum(kept))


def test_an_empty_day_is_a_valid_partition(replayed):
    """Invariant (d): a day after the slice's last, landed with a header-only file: the run
    succeeds and no table changes."""
    day = "1998-04-23"
    before = replayed.tables()
    folder = replayed.paths.landing_day(replayed.name, day)
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text("user_id,item_id,rating,timestamp\n")
    result = replayed.run(day)
    assert result.success
    raw = {
        e.materialization.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }["raw_interactions"]
    assert raw["dagster/row_count"].value == 0
    assert replayed.tables() == before


def test_a_malformed_file_stops_its_own_day_and_the_next_day_goes_on(replayed):
    """Invariant (f): a file without a timestamp column is named in the run's failure and not
    ingested; bad rows in a good file are quarantined on their day; the next day runs."""
    from orchestration.cli.reports import step_failures

    bad_day, next_day = "1998-04-24", "1998-04-25"
    folder = replayed.paths.landing_day(replayed.name, bad_day)
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text("user_id,item_id,rating\n1,2,3\n")
    failed = replayed.run(bad_day)
    assert not failed.success
    message = "\n".join(step_failures(failed))
    assert f"date={bad_day}/interactions.csv" in message and "timestamp" in message, message

    folder = replayed.paths.landing_day(replayed.name, next_day)
    folder.mkdir(parents=True)
    (folder / "interactions.csv").write_text(
        "user_id,item_id,rating,timestamp\n1,50,4,893462400\n1,51,nine,893462401\n,52,3,893462402\n"
    )
    assert replayed.run(next_day).success
    assert query(
        replayed.paths.warehouse,
        "select reason, source_file, source_row from quarantine_interactions "
        "where landed_date = ? order by source_row",
        [next_day],
    ) == [
        ("rating_not_a_number", f"date={next_day}/interactions.csv", 3),
        ("missing_user_id", f"date={next_day}/interactions.csv", 4),
    ]
    assert query(
        replayed.paths.warehouse,
        "select count(*) from fct_interactions where landed_date = ?",
        [next_day],
    ) == [(1,)]


def test_the_landing_sensor_runs_new_and_changed_days_once(tmp_path, slice_folder):
    """Three days landed: one range run (a backfill) and the next day's lists; after they are
    ingested, nothing; a changed file for the first day: that day alone, with a new run key."""
    from orchestration.defs.ingest.sensors import landing_sensor

    home = Home(tmp_path / "home", slice_folder)
    days = home.cut.days[:3]
    home.land(*days)

    def evaluate(cursor=None):
        context = dg.build_sensor_context(
            instance=home.instance, cursor=cursor, resources={"lake": home.lake}
        )
        return landing_sensor(context), context.cursor

    requests, cursor = evaluate()
    assert [
        (r.job_name, r.partition_key, r.tags.get("dagster/asset_partition_range_end"))
        for r in requests
    ] == [
        ("daily_update", None, days[-1]),
        ("serve_lists", home.cut.days[3], None),
    ]
    assert home.run(days[0], days[-1]).success
    skipped, cursor = evaluate(cursor)
    assert isinstance(skipped, dg.SkipReason)

    path = home.paths.landing_day(home.name, days[0]) / "interactions.parquet"
    data = pq.read_table(path)
    pq.write_table(data.slice(1), path)
    (changed, lists), _ = evaluate(cursor)
    assert (changed.job_name, changed.partition_key) == ("daily_update", days[0])
    assert changed.run_key != requests[0].run_key
    assert lists.partition_key == days[1]


def test_with_nightly_retrain_the_sensor_retrains_between_the_day_and_the_next_lists(
    tmp_path, slice_folder, monkeypatch
):
    """RECLAKE_NIGHTLY_RETRAIN=1: the landed day, then the retrain (no partition: the models are
    whole), then the next day's lists, which therefore come from tonight's champion."""
    from orchestration.defs.ingest.sensors import landing_sensor

    monkeypatch.setenv("RECLAKE_NIGHTLY_RETRAIN", "1")
    home = Home(tmp_path / "home", slice_folder)
    home.land(home.cut.days[0])
    context = dg.build_sensor_context(instance=home.instance, resources={"lake": home.lake})
    requests = landing_sensor(context)
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("daily_update", home.cut.days[0]),
        ("nightly_retrain", None),
        ("serve_lists", home.cut.days[1]),
    ]
    assert requests[1].run_key.startswith(f"retrain {home.cut.days[0]}:")


def test_daily_refresh_writes_new_ones_then_the_queue_oldest_first_and_keeps_the_rest(tmp_path):
    """The daily profile refresh's order, merge and queue (orchestration/defs/llm/daily.py)."""
    import pandas as pd

    from orchestration.defs.llm.daily import DailyRefresh

    path = tmp_path / "profiles" / "users" / "profiles.parquet"
    path.parent.mkdir(parents=True)
    previous = pd.DataFrame(
        {"user_id": ["a", "b", "c"], "profile": ["A0", "B0", "C0"], "as_of": ["d0", "d0", "d0"]}
    )
    previous.to_parquet(path)
    pd.DataFrame({"user_id": ["c", "b"], "queued_since": ["d1", "d0"]}).to_parquet(
        path.parent / "queue.parquet"
    )
    refresh = DailyRefresh("user", path, "d2", budget=1)
    inputs = [(u, {}) for u in ("a", "b", "c", "n")]
    ordered, budget = refresh.order(inputs)
    assert [u for u, _ in ordered] == ["n", "b", "c", "a"] and budget == 2  # new, queue, rest
    written = pd.DataFrame({"user_id": ["n", "b"], "profile": ["N2", "B2"]})
    merged = refresh.merge(written, deferred=["c", "a"])
    assert merged.to_dict("records") == [
        {"user_id": "a", "profile": "A0", "as_of": "d0"},
        {"user_id": "b", "profile": "B2", "as_of": "d2"},
        {"user_id": "c", "profile": "C0", "as_of": "d0"},
        {"user_id": "n", "profile": "N2", "as_of": "d2"},
    ]
    queue = pd.read_parquet(path.parent / "queue.parquet")
    assert queue.to_dict("records") == [
        {"user_id": "c", "queued_since": "d1"},
        {"user_id": "a", "queued_since": "d2"},
    ]


@pytest.mark.integration
@pytest.mark.skipif(java_missing() is not None, reason=str(java_missing()))
def test_spark_builds_the_same_tables_from_the_landed_days(tmp_path, slice_folder, full_load):
    """Invariant (e): the landed days as one run on Spark (dbt-spark rebuilds the daily models from
    every landed file) equal DuckDB's (whose one run equals its day-by-day replay: invariant (a))."""
    from support.engines import assert_same_tables

    home = Home(tmp_path / "home", slice_folder)
    home.lake = home.lake.model_copy(update={"engine": "spark"})
    home.land(*home.cut.days)
    assert home.run(home.cut.days[0], home.cut.days[-1]).success
    assert_same_tables(full_load.paths.home, home.paths.home)


def test_the_daily_loop_encodes_each_text_once(tmp_path, monkeypatch):
    """Embedding assets read every profile each day; a text encoded on an earlier day is reused
    (vectors equal to a fresh encoding), and only new texts reach the encoder (a counting spy)."""
    import numpy as np

    from orchestration.core.resources import LakeResource
    from orchestration.defs.llm import vectors

    lake = LakeResource(home=str(tmp_path / "home"), dataset="ml-100k")
    (tmp_path / "home" / "landing" / "ml-100k" / "date=1998-04-01").mkdir(parents=True)
    encoded = []

    def spy(texts):
        encoded.append(list(texts))
        return real(texts)

    real = vectors.encode_texts
    monkeypatch.setattr(vectors, "encode_texts", spy)
    first = vectors.text_encoder(lake)(["a quiet drama", "a loud comedy"])
    second = vectors.text_encoder(lake)(["a loud comedy", "a space opera"])
    assert [sorted(call) for call in encoded] == [
        ["a loud comedy", "a quiet drama"],
        ["a space opera"],
    ]
    assert np.array_equal(second[0], first[1]) and second.shape == (2, 384)
    np.testing.assert_allclose(second[1], real(["a space opera"])[0], atol=1e-6)


def test_a_long_history_lands_as_one_drop_on_the_day_before(tmp_path, slice_folder):
    """`--history-in-one-drop`: the days before D become one delivery dated D - 1 (one partition),
    in the same row order; the days from D on are untouched."""
    from orchestration.core.partitions import previous_day

    cut = Home(tmp_path / "home", slice_folder).cut
    until = cut.days[5]
    folded = cut.history_in_one_drop(until)
    assert folded.days == [previous_day(until), *cut.days[5:]]
    for table in ("interactions", "items"):
        before = [cut.rows(table, day) for day in cut.days[:5]]
        drop = folded.rows(table, previous_day(until))
        assert drop.equals(pa.concat_tables(before))
        for day in cut.days[5:]:
            assert folded.rows(table, day).equals(cut.rows(table, day))


def test_a_days_dbt_tests_read_that_days_rows(replayed):
    """The per-record models' tests in a day's run filter on its landed day (dbt's where config)."""
    import json

    from orchestration.core.settings import DBT_PROJECT_DIR

    day = replayed.cut.days[-1]
    result = replayed.run(day)
    assert result.success
    (target,) = (DBT_PROJECT_DIR / "target").glob(f"dbt_cleaning-{result.run_id[:7]}-*")
    compiled = {
        r["unique_id"].split(".")[2]: r.get("compiled_code") or ""
        for r in json.loads((target / "run_results.json").read_text())["results"]
    }
    windowed = [
        name for name, sql in compiled.items() if f"landed_date >= cast('{day}' as date)" in sql
    ]
    assert any(name.startswith("unique_combination_fct_interactions") for name in windowed)
    assert any(name.startswith("accepted_values_int_interactions_checked") for name in windowed)
