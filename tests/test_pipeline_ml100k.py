"""Integration: the real Dagster job on the real ML-100K files, twice, into a temporary data home."""

from __future__ import annotations

import pandas as pd
import pytest
from support.data import ML100K_DIR
from support.pipelines import query

pytestmark = pytest.mark.integration


def test_fct_interactions_holds_all_of_ml100k(ml100k_runs):
    runs, _ = ml100k_runs
    warehouse = runs[-1].warehouse
    assert query(
        warehouse,
        "select count(*), count(distinct user_id), count(distinct item_id) from fct_interactions",
    ) == [(100_000, 943, 1_682)]
    assert query(warehouse, "select count(*) from quarantine_interactions") == [(0,)]
    types = dict(
        query(
            warehouse,
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'fct_interactions'",
        )
    )
    assert (
        types["user_id"] == "VARCHAR"
        and types["item_id"] == "VARCHAR"
        and types["event_ts"] == "TIMESTAMP"
    )


def test_splits_hold_one_test_and_one_valid_per_user_and_test_is_latest(ml100k_runs):
    runs, _ = ml100k_runs
    warehouse = runs[-1].warehouse
    counts = dict(query(warehouse, "select split, count(*) from splits group by split"))
    assert counts == {"test": 943, "valid": 943, "train": 100_000 - 2 * 943}
    # Independent check of the protocol: a stable sort by time over the raw file order, in pandas.
    raw = pd.read_csv(ML100K_DIR / "ml-100k.inter", sep="\t")
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    ordered = raw.sort_values(["user_id", "timestamp"], kind="stable")
    expected_test = ordered.groupby("user_id").tail(1)
    expected = {(str(u), str(i)) for u, i in zip(expected_test.user_id, expected_test.item_id)}
    actual = set(query(warehouse, "select user_id, item_id from splits where split = 'test'"))
    assert actual == expected
    expected_valid = ordered.groupby("user_id").nth(-2)
    assert set(query(warehouse, "select user_id, item_id from splits where split = 'valid'")) == {
        (str(u), str(i)) for u, i in zip(expected_valid.user_id, expected_valid.item_id)
    }


def test_second_run_gives_identical_tables(ml100k_runs):
    _, tables = ml100k_runs
    first, second = tables
    assert first == second
    assert first["fct_interactions"][0] == 100_000  # no duplicated rows after the re-run


def test_materializations_carry_row_counts_hashes_and_source_checksums(ml100k_runs):
    runs, _ = ml100k_runs
    materializations = {
        e.materialization.asset_key.to_user_string(): e.materialization
        for e in runs[-1].result.get_asset_materialization_events()
    }
    raw = materializations["raw_interactions"]
    assert raw.metadata["dagster/row_count"].value == 100_000
    assert (
        raw.metadata["source_sha256"].value
        == "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
    )
    assert len(raw.metadata["content_sha256"].value) == 64
    fct = materializations["fct_interactions"]
    assert fct.metadata["dagster/row_count"].value == 100_000
    assert len(fct.metadata["content_md5"].value) == 32
    checks = {e.asset_check_key.name: e for e in runs[-1].result.get_asset_check_evaluations()}
    assert checks["raw_rows_reconcile"].passed
    assert checks["raw_rows_reconcile"].metadata["raw_rows"].value == 100_000
    assert checks["fct_interactions_expectations"].passed
