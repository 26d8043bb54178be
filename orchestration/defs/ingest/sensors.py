"""The landing sensor: a new or changed day in the landing zone launches that day's run.

Each evaluation hashes the landed days (a file's sha256 is kept in the cursor with its size and
mtime, so an unchanged file is not read again). Days whose hash differs from the one the ingest
stage recorded when it last read them (lake/raw/<dataset>/landed_days.json) are due:
one due day is one run of `daily_update` for its partition; several (a history, or days missed
while the daemon was down) are one run over their range (a single-run backfill). The run key
carries the hash, so an identical re-delivery is skipped by Dagster even without the cursor, and a
changed file for a past day re-runs that day. The lists served the next morning follow in a
`serve_lists` run for the day after the last due day. With RECLAKE_NIGHTLY_RETRAIN=1 a
`nightly_retrain` run comes between them: the models retrained by the retraining policy (warm
starts, a full retrain when due) and the gate, so the next day's lists come from tonight's champion.
"""

from __future__ import annotations

import hashlib
import json

import dagster as dg

from models.common.files import sha256_file
from orchestration.core.partitions import daily_partitions, next_day
from orchestration.core.paths import Lake
from orchestration.core.resources import LakeResource
from orchestration.core.settings import setting
from orchestration.defs.ingest.landing import day_sha256, ingested_days, landed_days

DAILY_JOB = "daily_update"
LISTS_JOB = "serve_lists"
RETRAIN_JOB = "nightly_retrain"
# groups named, not imported: the stages stay independent of each other. The Feast training set
# (a point-in-time join over every train interaction) is training's input: the retrain builds it.
# served_outcomes scores the lists served on the day that landed, by that day's events.
DAILY_SELECTION = (
    dg.AssetSelection.groups("ingest", "transform", "features", "llm")
    | dg.AssetSelection.assets("served_outcomes")
) - dg.AssetSelection.assets("training_set")
daily_update_job = dg.define_asset_job(
    DAILY_JOB,
    selection=DAILY_SELECTION,
    description="One landed day (or a range of days, one run): its raw files, the dbt models and "
    "checks, LLM profiles of what changed, Feast, the outcomes of the lists served that day. No training.",
)
# the two-stage ranker (with the Feast training set and the tuned judge it reads) and the timeline
# protocol stay with the weekly full pipeline: they take minutes where a warm start takes seconds
NIGHTLY_RETRAIN_SELECTION = dg.AssetSelection.assets(
    "suspicious_users",
    "popularity_model",
    "content_retriever_model",
    "ease_model",
    "sasrec_model",
    "llm_sasrec_model",
    "model_comparison",
    "champion_model",
)
nightly_retrain_job = dg.define_asset_job(
    RETRAIN_JOB,
    selection=NIGHTLY_RETRAIN_SELECTION,
    description="After a day's run (RECLAKE_NIGHTLY_RETRAIN=1): the models on the new data by the "
    "retraining policy (warm starts; a full retrain when due) and the gate.",
)
serve_lists_job = dg.define_asset_job(
    LISTS_JOB,
    selection=dg.AssetSelection.groups("serving"),
    description="The lists served on one day, from data before it (no judge, no simulated users).",
)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def day_hashes(paths: Lake, dataset: str, known: dict) -> tuple[dict[str, str], dict]:
    """sha256 of every landed day's files; `known` ({path: [size, mtime_ns, sha]}) spares re-reading
    unchanged files and is returned updated."""
    files = {}

    def file_sha256(path) -> str:
        stat = path.stat()
        size_mtime = [stat.st_size, stat.st_mtime_ns]
        before = known.get(str(path))
        sha = before[2] if before and before[:2] == size_mtime else sha256_file(path)
        files[str(path)] = [*size_mtime, sha]
        return sha

    hashes = {
        day: day_sha256(paths, dataset, day, file_sha256) for day in landed_days(paths, dataset)
    }
    return hashes, files


def due_runs(hashes: dict[str, str], done: dict[str, str], retrain: bool = False) -> list[dict]:
    """The runs the landed days call for, given the hashes already run: a day run (one day or a
    range), with `retrain` the nightly retrain, and the lists served the day after its last day."""
    due = sorted(day for day, sha in hashes.items() if done.get(day) != sha)
    if not due:
        return []
    first, last = due[0], due[-1]
    key = hashlib.sha256("".join(f"{d}:{hashes[d]}" for d in due).encode()).hexdigest()[:16]
    day_run = {"job": DAILY_JOB, "run_key": f"{first}..{last}:{key}", "days": due}
    if first == last:
        day_run["partition_key"] = first
    else:  # one run over the range (it also re-runs any unchanged day between the due ones)
        day_run["tags"] = {RANGE_START: first, RANGE_END: last}
    runs = [day_run]
    if retrain:
        runs.append({"job": RETRAIN_JOB, "run_key": f"retrain {last}:{key}"})
    served = next_day(last)
    if served <= (daily_partitions.get_last_partition_key() or ""):
        runs.append({"job": LISTS_JOB, "run_key": f"serve {served}:{key}", "partition_key": served})
    return runs


@dg.sensor(
    name="landing_sensor",
    jobs=[daily_update_job, nightly_retrain_job, serve_lists_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Run each new or changed day of the landing zone through ingest, dbt and Feast, then "
    "serve the next day's lists from it.",
)
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
    known = json.loads(context.cursor) if context.cursor else {}
    dataset = lake.spec().name
    hashes, files = day_hashes(lake.paths, dataset, known)
    context.update_cursor(json.dumps(files))
    # due: what the ingest stage has not read as it is now (a queued run's key stops a second launch)
    runs = due_runs(hashes, ingested_days(lake.paths, dataset), setting("RECLAKE_NIGHTLY_RETRAIN"))
    if not runs:
        return dg.SkipReason(f"{len(hashes)} landed day(s), none new or changed")
    return [
        dg.RunRequest(
            run_key=run["run_key"],
            job_name=run["job"],
            partition_key=run.get("partition_key"),
            tags=run.get("tags", {}),
        )
        for run in runs
    ]
