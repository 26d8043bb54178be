"""Fault injection: the malformed-input corpus (tests/support/corpus/) in every dataset format
through the real ingest_transform job. Exact quarantine counts and reasons per format, nothing lost,
odd values stored as given; whole-file problems fail with a message naming the file, and a failed
run leaves the previous good raw parquet and warehouse tables as they were."""

from __future__ import annotations

import gzip
import re
import time
from collections import Counter
from datetime import UTC
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from support import corpus
from support.data import TODAY
from support.pipelines import query

from orchestration.core.datasets import DatasetError, resolve_dataset
from orchestration.defs.ingest.loaders import load_raw_table

# The fault each format's pipeline test injects after its good run (the rest are checked on the loader).
FAULT_AFTER_GOOD_RUN = {
    "csv": "semicolon_csv",
    "parquet": "corrupt_parquet",
    "parquet-typed": "parquet_missing_column",
    "amazon": "json_gz_not_gzip",
    "recbole": "utf16_recbole",
    "ml-latest-small": "renamed_column_mls",
}


def run_warehouse(home: Path, dataset: str, data_dir: Path):
    """The real `ingest_transform` job on a fresh instance, up to the quarantine: ingest, dbt_cleaning
    (staging, checked rows, fct/quarantine, their dbt tests) and the blocking checks. dbt_marts is left
    out: it reads only fct_interactions, and leaving it out keeps six runs inside the CI budget."""
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import WAREHOUSE_JOB, build_defs
    from orchestration.defs.ingest.assets import ingest_assets
    from orchestration.defs.transform.assets import dbt_cleaning

    lake = LakeResource(home=str(home), dataset=dataset, data_dir=str(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        selection = [key for assets in (*ingest_assets, dbt_cleaning) for key in assets.keys]
        return (
            build_defs(lake)
            .resolve_job_def(WAREHOUSE_JOB)
            .execute_in_process(
                instance=instance,
                raise_on_error=False,
                asset_selection=selection,
                partition_key=TODAY,
            )
        )


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    return error.message


def source_position(fmt: str, folder: Path, records: list, record) -> tuple[str, int]:
    """(file, line or row) where ``record`` starts, found independently of the loader: parquet rows
    count from 1; text files are searched for the record's line (the header, if any, is line 1)."""
    if fmt.startswith("parquet"):
        return "interactions.parquet", next(
            i for i, r in enumerate(records, start=1) if r is record
        )
    names = {
        "csv": ["interactions.csv"],
        "recbole": ["ml-100k.inter"],
        "ml-latest-small": ["ratings.csv"],
        "amazon": ["reviews.json", "reviews.json.gz"],
    }[fmt]
    needle = record.item_id if fmt != "amazon" else f'"asin": "{record.item_id}"'
    for name in names:
        data = (folder / name).read_bytes()
        text = (gzip.decompress(data) if name.endswith(".gz") else data).decode(
            "utf-8-sig", "replace"
        )
        for number, line in enumerate(text.splitlines(), start=1):
            if needle in line and str(record.timestamp) in line:
                return name, number
    raise AssertionError(f"{record.case} not found in {names}")


@pytest.mark.integration
@pytest.mark.parametrize("fmt", corpus.FORMATS)
def test_fault_injection_corpus_exact_quarantine_then_failed_run_keeps_tables(fmt, tmp_path):
    records = corpus.records_for(fmt)
    dataset, data_dir = corpus.write_format(fmt, tmp_path / "data")
    expected_reasons, expected_clean = corpus.expected_counts(fmt)
    home = tmp_path / "home"
    started = time.monotonic()
    run = run_warehouse(home, dataset, data_dir)
    assert run.success, failure_message(run)
    warehouse = home / "warehouse.duckdb"
    raw_path = (
        home
        / "lake"
        / "raw"
        / resolve_dataset(dataset, str(data_dir)).name
        / "interactions.parquet"
    )

    by_reason = Counter(
        dict(
            query(warehouse, "select reason, count(*) from quarantine_interactions group by reason")
        )
    )
    clean = query(warehouse, "select count(*) from fct_interactions")[0][0]
    raw_rows = pq.read_metadata(raw_path).num_rows
    # the figures the closing note reports (visible with -s)
    print(
        f"\n{fmt}: {raw_rows} rows in {time.monotonic() - started:.0f}s; quarantined {dict(sorted(by_reason.items()))}"
        f" (expected {dict(sorted(expected_reasons.items()))}); clean {clean} (expected {expected_clean})"
    )
    assert by_reason == expected_reasons
    assert clean == expected_clean
    assert raw_rows == len(records) == clean + sum(by_reason.values())
    checks = {e.asset_check_key.name: e for e in run.get_asset_check_evaluations()}
    assert (
        checks["raw_rows_reconcile"].passed
        and checks["raw_rows_reconcile"].metadata["raw_rows"].value == raw_rows
    )
    assert checks["fct_interactions_expectations"].passed  # the clean part is clean
    built = {
        e.materialization.asset_key.to_user_string() for e in run.get_asset_materialization_events()
    }
    assert {"raw_interactions", "fct_interactions", "quarantine_interactions"} <= built

    # odd ids are data: stored exactly as written
    odd = {
        (r.user_id, r.item_id)
        for r in records
        if r.case.startswith("id_") or r.case == "json_number_ids"
    }
    stored = set(query(warehouse, "select user_id, item_id from fct_interactions"))
    assert odd and odd <= stored
    # every timestamp format lands on the instant it names, in UTC
    for record in (r for r in records if r.case.startswith("ts_") and r.reason is None):
        got = query(
            warehouse,
            "select event_ts from fct_interactions where user_id = ? and item_id = ?",
            [record.user_id, record.item_id],
        )
        assert got == [(corpus.utc_instant(record.timestamp),)], record.case
    # the quarantine keeps the bad row's raw value and where it came from
    unparseable = next((r for r in records if r.timestamp == "1998-13-45"), None) or next(
        r for r in records if r.case == "ts_out_of_range" and r.timestamp == "-1"
    )
    raw_value = (
        unparseable.timestamp
        if fmt != "parquet-typed"
        else str(  # typed parquet holds an instant
            corpus.utc_instant(unparseable.timestamp)
            .replace(tzinfo=UTC)
            .astimezone(corpus.TYPED_TZ)
        )
    )
    row = query(
        warehouse,
        'select source_file, source_row, "timestamp", reason from quarantine_interactions '
        "where item_id = ?",
        [unparseable.item_id],
    )
    assert row == [
        (*source_position(fmt, data_dir, records, unparseable), raw_value, unparseable.reason)
    ]
    # of a conflicting pair the first in source order is kept
    conflict = next(r for r in records if r.case == "conflicting")
    first = next(
        r
        for r in records
        if (r.user_id, r.item_id, r.timestamp)
        == (conflict.user_id, conflict.item_id, conflict.timestamp)
    )
    assert (
        query(
            warehouse,
            "select rating from fct_interactions where user_id = ? and item_id = ?",
            [first.user_id, first.item_id],
        )
        == [(float(first.rating),)]
        != [(float(conflict.rating),)]
    )
    # the 1 MB field arrives whole: a review text, or a title in the formats without reviews
    if fmt in corpus.TEXT_COLUMN:
        assert query(
            warehouse,
            "select length(review_text) from int_interactions_checked where item_id = 'x2'",
        ) == [(corpus.HUGE,)]
    else:
        titles = dict(query(warehouse, "select item_id, title from stg_items"))
        assert len(titles["i2"]) == corpus.HUGE + (
            len(" (1996)") if fmt == "ml-latest-small" else 0
        )
        assert titles["i3"] == (
            'Two\nlines, "quoted" (1997)' if fmt == "ml-latest-small" else "Caf\ufffd \ufffd"
        )

    # a whole-file problem after the good run: a clear error, and nothing already written changes
    raw_before = raw_path.read_bytes()
    _, message = corpus.break_file(FAULT_AFTER_GOOD_RUN[fmt], data_dir)
    failed = run_warehouse(home, dataset, data_dir)
    assert not failed.success
    assert re.search(message, failure_message(failed)), failure_message(failed)
    assert raw_path.read_bytes() == raw_before
    assert query(warehouse, "select count(*) from fct_interactions")[0][0] == clean
    assert query(warehouse, "select count(*) from quarantine_interactions")[0][0] == sum(
        by_reason.values()
    )
    assert not [p for p in home.rglob("*.tmp")]


@pytest.mark.parametrize("fault", sorted(corpus.WHOLE_FILE_FAULTS))
def test_fault_injection_whole_file_problem_fails_naming_the_file(fault, tmp_path):
    """Loader level (no pipeline run): each whole-file fault raises DatasetError naming the file."""
    fmt = corpus.WHOLE_FILE_FAULTS[fault][0]
    dataset, data_dir = corpus.write_format(fmt, tmp_path, corpus.build_records(n_clean=20))
    path, message = corpus.break_file(fault, data_dir)
    spec = resolve_dataset(dataset, str(data_dir))
    with pytest.raises(DatasetError, match=message) as raised:
        load_raw_table(spec, spec.path, "interactions")
    assert str(path) in str(raised.value)  # the full path, so the user knows which copy
