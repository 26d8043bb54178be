"""Blocking checks on fct_interactions: the Great Expectations suite and the row reconciliation.

Both run after dbt_cleaning and before dbt_marts; an ERROR result stops everything downstream.
"""

import json

import dagster as dg

from orchestration.core.partitions import run_days
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import connect, query
from orchestration.defs.transform.expectations import (
    VALID_EVENT_TS,
    reconcile_counts,
    validate_fct_interactions,
)

FCT = dg.AssetKey("fct_interactions")
QUARANTINE = dg.AssetKey("quarantine_interactions")


@dg.asset_check(
    asset=FCT,
    blocking=True,
    description="Great Expectations suite: non-null keys, rating in the dataset's scale, "
    "unique (user_id, item_id, event_ts), timestamps in range.",
)
def fct_interactions_expectations(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> dg.AssetCheckResult:
    facts = json.loads(lake.dataset_facts().read_text())
    scale = (facts["rating_min"], facts["rating_max"]) if facts["has_ratings"] else None
    window = run_days(context) if facts.get("layout") == "landing" else None
    frame = query(lake.warehouse_path, *rows_to_validate(window))
    suite = validate_fct_interactions(frame, scale, *VALID_EVENT_TS)
    failed = [r for r in suite.results if not r["success"]]
    return dg.AssetCheckResult(
        passed=suite.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if suite.success
        else f"{len(failed)} expectation(s) failed: "
        + "; ".join(
            f"{r['expectation']}({r['column']}): {r['unexpected_count']} unexpected" for r in failed
        ),
        metadata={
            "rows_validated": len(frame),
            "expectations": len(suite.results),
            "results": dg.MetadataValue.json(suite.results),
        },
    )


def rows_to_validate(window: tuple[str, str] | None) -> tuple[str, list]:
    """The whole table, or in a day's run the rows landed in its days and every row sharing a
    (user, item, time) key with them (a duplicate across days is caught; the rest is not re-read)."""
    columns = "f.user_id, f.item_id, f.rating, f.event_ts"
    if window is None:
        return f"select {columns} from main.fct_interactions f", []
    return (
        f"select {columns} from main.fct_interactions f semi join (select user_id, item_id, "
        "event_ts from main.fct_interactions where landed_date >= cast(? as date) and "
        "landed_date <= cast(? as date)) w using (user_id, item_id, event_ts)",
        list(window),
    )


def raw_interactions_glob(lake: LakeResource) -> str:
    """Every raw interaction file: the snapshot, or one file per landed day."""
    name = lake.spec().name
    if json.loads(lake.dataset_facts().read_text()).get("layout") == "landing":
        return str(lake.paths.raw_day(name, "interactions", "*"))
    return str(lake.paths.raw_table(name, "interactions"))


@dg.asset_check(
    asset=FCT,
    blocking=True,
    additional_deps=[QUARANTINE, dg.AssetKey("raw_interactions")],
    description="Raw rows = fct_interactions + quarantine_interactions, exactly.",
)
def raw_rows_reconcile(lake: LakeResource) -> dg.AssetCheckResult:
    with connect(lake.warehouse_path) as con:
        counts = reconcile_counts(con, raw_interactions_glob(lake))
    return dg.AssetCheckResult(
        passed=counts["balanced"],
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if counts["balanced"]
        else (
            f"raw {counts['raw_rows']} != fct {counts['fct_rows']} + quarantine {counts['quarantined_rows']}"
        ),
        metadata={
            "raw_rows": counts["raw_rows"],
            "fct_rows": counts["fct_rows"],
            "quarantined_rows": counts["quarantined_rows"],
            "quarantine_by_reason": dg.MetadataValue.json(counts["quarantine_by_reason"]),
        },
    )


transform_checks = [fct_interactions_expectations, raw_rows_reconcile]
