"""One daily partitions definition (UTC) for every partitioned asset. What a key D means depends on
the asset: for the daily raw tables and the models dbt builds from them, the events of day D; for
the nightly stages (serving, evaluation), the lists served on day D, scored from data before D.

end_offset=1: today's partition exists (the nightly run scores the day it runs on). The first key is
RECLAKE_SERVING_START_DATE (default 1990-01-01, before the first event of any bundled dataset)."""

from datetime import date, timedelta

import dagster as dg

from orchestration.core.settings import setting

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=setting("RECLAKE_SERVING_START_DATE"), end_offset=1, timezone="UTC"
)


def calendar(first: str, last: str) -> list[str]:
    """Every day from `first` to `last`, both included, as YYYY-MM-DD."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def partition_days(context) -> list[str]:
    """The day keys a run covers: one partition, or every day of a range (a single-run backfill)."""
    window = context.partition_time_window
    last = window.end.date() - timedelta(days=1)  # the window's end is exclusive
    return calendar(window.start.date().isoformat(), last.isoformat())


def run_days(context) -> tuple[str, str] | None:
    """The first and last day of a run's partition or range, read from its tags (for an
    unpartitioned asset in a day's run); None in a run without one."""
    tags = context.run.tags
    if day := tags.get("dagster/partition"):
        return day, day
    if first := tags.get("dagster/asset_partition_range_start"):
        return first, tags["dagster/asset_partition_range_end"]
    return None


def next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def previous_day(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def daily_asset(**spec):
    """Decorator: an asset partitioned by day whose date ranges run as one run (a single-run
    backfill: `dg launch --partition-range`, a range picked in the UI, the landing sensor's history).
    A one-spec multi_asset, because BackfillPolicy is public API on `multi_asset` while on `asset`
    it is still marked beta in Dagster 1.13. `spec`: the AssetSpec's fields."""
    return dg.multi_asset(
        specs=[dg.AssetSpec(**spec)],
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
