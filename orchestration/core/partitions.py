"""Daily partitions of the nightly stages (serving, evaluation): one per scoring date (UTC), today's included."""

import dagster as dg

from orchestration.core.settings import setting

# end_offset=1: today's partition exists (the nightly run scores the day it runs on); the first date a
# backfill can ask for is RECLAKE_SERVING_START_DATE
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=setting("RECLAKE_SERVING_START_DATE"), end_offset=1, timezone="UTC"
)
