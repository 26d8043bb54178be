"""Daily partitions of the serving group: one per scoring date (UTC), today's included."""

import os

import dagster as dg

# The first date a backfill can ask for; RECLAKE_SERVING_START_DATE moves it.
SERVING_START_DATE = os.environ.get("RECLAKE_SERVING_START_DATE", "2026-01-01")

# end_offset=1: today's partition exists (the nightly run scores the day it runs on)
daily_partitions = dg.DailyPartitionsDefinition(start_date=SERVING_START_DATE, end_offset=1, timezone="UTC")
