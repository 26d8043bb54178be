"""Integration: a dirty copy of ML-100K through the real job; exact quarantine counts per reason,
nothing lost, clear failures for whole-file problems, and the previous good tables kept."""

from __future__ import annotations

import csv

import pytest
from support.data import ML100K_DIR
from support.pipelines import query, run_pipeline

from orchestration.defs.transform import checks as transform_checks

pytestmark = pytest.mark.integration
CLEAN_ROWS = 3000
INJECTED = ["user_id,item_id,rating,timestamp"]


def ml100k_head(n: int) -> list[list[str]]:
    with open(ML100K_DIR / "ml-100k.inter") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1 : n + 1]
    return rows


def write_dirty_copy(folder) -> dict[str, int]:
    """The first CLEAN_ROWS ML-100K ratings as a generic folder, plus injected bad rows; returns the
    number of rows injected for each quarantine reason."""
    good = ml100k_head(CLEAN_ROWS)
    bad = {
        "missing_user_id": [
            ["", "50", "4", "881250949"],
            ["  ", "51", "4", "881250950"],
            ["", "52", "3", "881250951"],
        ],
        "missing_item_id": [["196", "", "4", "881250952"], ["186", "", "2", "881250953"]],
        "missing_timestamp": [["196", "60", "4", ""]],
        "unparseable_timestamp": [
            ["196", "61", "4", "yesterday"],
            ["186", "62", "4", "1998-13-45"],
        ],
        "timestamp_out_of_range": [
            ["196", "63", "4", "0"],
            ["196", "64", "4", "99999999999999"],
            ["196", "65", "4", "2150-01-01T00:00:00Z"],
        ],
        "missing_rating": [["196", "66", "", "881250954"]],
        "rating_not_a_number": [
            ["196", "67", "five", "881250955"],
            ["196", "68", "nan", "881250956"],
        ],
        "rating_out_of_range": [
            ["196", "69", "7", "881250957"],
            ["196", "70", "0", "881250958"],
            ["196", "71", "-1", "881250959"],
        ],
        # exact repeats of rows already in the clean part
        "duplicate_event": [good[0], good[1], good[1]],
        # same (user, item, time) as a clean row, another rating
        "conflicting_duplicate": [
            [good[2][0], good[2][1], "1" if good[2][2] != "1" else "2", good[2][3]]
        ],
    }
    lines = ["user_id,item_id,rating,timestamp"]
    writer_rows = good + [row for rows in bad.values() for row in rows]
    # ids that look like SQL or HTML are data, and ISO 8601 timestamps (with offsets) are valid
    writer_rows += [
        [
            "O'Brien; DROP TABLE fct_interactions;--",
            "<script>alert(1)</script>",
            "5",
            "1998-03-01T12:00:00Z",
        ],
        [
            "O'Brien; DROP TABLE fct_interactions;--",
            'item "quoted"',
            "4",
            "1998-03-01T14:00:00+02:00",
        ],
    ]
    with open(folder / "interactions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(lines[0].split(","))
        writer.writerows(writer_rows)
        handle.write("196,72,4,881250960,unexpected-extra-field\n")  # malformed: one field too many
    return {**{reason: len(rows) for reason, rows in bad.items()}, "malformed_record": 1}


def test_dirty_copy_quarantines_exact_counts_and_keeps_good_rows(tmp_path):
    folder = tmp_path / "dirty"
    folder.mkdir()
    expected = write_dirty_copy(folder)
    run = run_pipeline(tmp_path / "home", str(folder))
    assert run.result.success
    by_reason = dict(
        query(run.warehouse, "select reason, count(*) from quarantine_interactions group by reason")
    )
    assert by_reason == expected
    raw_rows = CLEAN_ROWS + sum(expected.values()) + 2
    fct_rows = query(run.warehouse, "select count(*) from fct_interactions")[0][0]
    assert fct_rows == CLEAN_ROWS + 2
    assert raw_rows == fct_rows + sum(expected.values())
    reconcile = next(
        e
        for e in run.result.get_asset_check_evaluations()
        if e.asset_check_key.name == "raw_rows_reconcile"
    )
    assert reconcile.passed and reconcile.metadata["raw_rows"].value == raw_rows
    # ids stored exactly as given; the offset timestamp converted to UTC
    odd = query(
        run.warehouse,
        "select item_id, cast(event_ts as varchar) from fct_interactions "
        "where user_id = ? order by item_id",
        ["O'Brien; DROP TABLE fct_interactions;--"],
    )
    assert odd == [
        ("<script>alert(1)</script>", "1998-03-01 12:00:00"),
        ('item "quoted"', "1998-03-01 12:00:00"),
    ]
    # the quarantine keeps the raw value and where it came from
    row = query(
        run.warehouse,
        'select source_file, source_row, "timestamp" from quarantine_interactions '
        "where reason = 'unparseable_timestamp' order by source_row limit 1",
    )
    # line = header + clean rows + the 6 bad rows written before it + 1
    assert row == [("interactions.csv", 1 + CLEAN_ROWS + 6 + 1, "yesterday")]


def test_failed_run_names_file_and_column_and_keeps_previous_tables(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    good = ml100k_head(500)
    with open(folder / "interactions.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["user_id", "item_id", "rating", "timestamp"], *good])
    home = tmp_path / "home"
    assert run_pipeline(home, str(folder)).result.success
    before = query(home / "warehouse.duckdb", "select count(*) from fct_interactions")
    raw_before = (home / "lake" / "raw" / "data" / "interactions.parquet").read_bytes()

    with open(folder / "interactions.csv", "w", newline="") as handle:  # the item column is gone
        csv.writer(handle).writerows(
            [["user_id", "rating", "timestamp"], *[[u, r, t] for u, _, r, t in good]]
        )
    failed = run_pipeline(home, str(folder))
    assert not failed.result.success
    failure = next(e for e in failed.result.all_events if e.event_type_value == "STEP_FAILURE")
    error = failure.event_specific_data.error
    while error.cause is not None:
        error = error.cause
    assert "interactions.csv: missing required column(s) 'item_id'" in error.message
    assert (
        query(home / "warehouse.duckdb", "select count(*) from fct_interactions")
        == before
        == [(500,)]
    )
    assert (home / "lake" / "raw" / "data" / "interactions.parquet").read_bytes() == raw_before
    assert not [p for p in (home / "lake" / "raw" / "data").iterdir() if p.name.endswith(".tmp")]


def test_failing_expectation_blocks_the_marts_fault_injected(tmp_path, monkeypatch):
    """Fault injection: narrow the suite's valid time range so the real GE run over real rows fails;
    the blocking check must then stop dbt_marts (splits never built)."""
    folder = tmp_path / "data"
    folder.mkdir()
    with open(folder / "interactions.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["user_id", "item_id", "rating", "timestamp"], *ml100k_head(300)]
        )
    monkeypatch.setattr(
        transform_checks, "VALID_EVENT_TS", ("1998-01-01 00:00:00", "2100-01-01 00:00:00")
    )
    run = run_pipeline(tmp_path / "home", str(folder))
    assert not run.result.success
    ge = next(
        e
        for e in run.result.get_asset_check_evaluations()
        if e.asset_check_key.name == "fct_interactions_expectations"
    )
    assert not ge.passed
    failed = [r for r in ge.metadata["results"].value if not r["success"]]
    assert [r["column"] for r in failed] == ["event_ts"] and failed[0]["unexpected_count"] > 0
    built = {
        e.materialization.asset_key.to_user_string()
        for e in run.result.get_asset_materialization_events()
    }
    assert "fct_interactions" in built and "splits" not in built
    assert query(
        run.warehouse, "select count(*) from information_schema.tables where table_name = 'splits'"
    ) == [(0,)]
