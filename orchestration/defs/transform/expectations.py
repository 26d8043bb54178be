"""The Great Expectations suite on fct_interactions and the raw = clean + quarantined reconciliation.

Plain functions over DuckDB/pandas, so tests call them without Dagster; checks.py wraps them as
blocking Dagster asset checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from orchestration.core.datasets import VALID_EVENT_TS  # noqa: F401 - the suite's range, re-exported


@dataclass
class SuiteResult:
    success: bool
    results: list[dict] = field(
        default_factory=list
    )  # one per expectation: name, column(s), success, detail


def validate_fct_interactions(
    frame: pd.DataFrame,
    rating_scale: tuple[float, float] | None,
    min_event_ts: str,
    max_event_ts: str,
) -> SuiteResult:
    """Run the GE suite: non-null keys, rating within the dataset's scale, unique (user, item, ts),
    timestamps inside the valid range."""
    import great_expectations as gx  # heavy import (~5 s): only when a check runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gxe = gx.expectations
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(
        globally=False
    )  # Dagster logs show progress
    batch_definition = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset("fct_interactions")
        .add_batch_definition_whole_dataframe("all_rows")
    )
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="item_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="event_ts"),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=["user_id", "item_id", "event_ts"]),
        gxe.ExpectColumnValuesToBeBetween(
            column="event_ts",
            min_value=pd.Timestamp(min_event_ts),
            max_value=pd.Timestamp(max_event_ts),
            strict_max=True,
        ),
    ]
    if rating_scale is not None:
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column="rating"),
            gxe.ExpectColumnValuesToBeBetween(
                column="rating", min_value=rating_scale[0], max_value=rating_scale[1]
            ),
        ]
    suite = context.suites.add(
        gx.ExpectationSuite(name="fct_interactions_suite", expectations=expectations)
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(
            name="fct_interactions_validation", data=batch_definition, suite=suite
        )
    )
    outcome = validation.run(batch_parameters={"dataframe": frame})
    results = []
    for item in outcome.results:
        config = item.expectation_config
        kwargs = config.kwargs
        results.append(
            {
                "expectation": config.type,
                "column": kwargs.get("column") or ",".join(kwargs.get("column_list", [])),
                "success": bool(item.success),
                "unexpected_count": (item.result or {}).get("unexpected_count", 0),
            }
        )
    return SuiteResult(success=bool(outcome.success), results=results)


def reconcile_counts(con: duckdb.DuckDBPyConnection, raw_interactions_path: str) -> dict:
    """Raw rows must equal clean rows + quarantined rows, exactly: nothing is silently dropped."""
    raw = con.execute("select count(*) from read_parquet(?)", [raw_interactions_path]).fetchone()[0]
    clean = con.execute("select count(*) from main.fct_interactions").fetchone()[0]
    quarantined = con.execute("select count(*) from main.quarantine_interactions").fetchone()[0]
    by_reason = dict(
        con.execute(
            "select reason, count(*) from main.quarantine_interactions group by reason order by reason"
        ).fetchall()
    )
    return {
        "raw_rows": raw,
        "fct_rows": clean,
        "quarantined_rows": quarantined,
        "balanced": raw == clean + quarantined,
        "quarantine_by_reason": by_reason,
    }
