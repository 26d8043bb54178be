"""Group `ingest`: raw source files -> lake/raw/<dataset>/, values kept as given.

raw_interactions and raw_items are partitioned by UTC event day. When the dataset has a landing zone
(landing.py), partition D reads that day's landed files into lake/raw/<dataset>/<table>/date=D/; a
range of days is one run. Without one, any partition reads the whole source as a snapshot into
lake/raw/<dataset>/<table>.parquet (how every run worked before the daily loop). raw_users and
raw_item_tags are dimensions: always read whole from the source.
"""

import hashlib
import json

import dagster as dg
import pyarrow as pa

from orchestration.core.datasets import DatasetError
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.partitions import daily_partitions, partition_days
from orchestration.core.resources import LakeResource
from orchestration.defs.ingest.landing import day_sha256, read_landed_day, record_ingested
from orchestration.defs.ingest.loaders import load_raw_table

INGEST_CODE_VERSION = "2"  # 2: daily tables carry _landed_date; a landing zone is read by day


def _write_facts(lake: LakeResource, has_ratings: bool, files: list[dict], layout: str) -> None:
    """Facts about the dataset that dbt needs (rating scale, layout) travel as a file, like every
    hand-over. A day without ratings (an empty one) does not make a rated dataset implicit."""
    spec, path = lake.spec(), lake.dataset_facts()
    if layout == "landing" and path.exists():
        before = json.loads(path.read_text())
        has_ratings = has_ratings or (before.get("layout") == layout and before["has_ratings"])
    write_json_atomic(
        {
            "dataset": spec.name,
            "kind": spec.kind,
            "layout": layout,
            "rating_min": spec.rating_scale[0] if spec.rating_scale else None,
            "rating_max": spec.rating_scale[1] if spec.rating_scale else None,
            "has_ratings": has_ratings,
            "files": files,
        },
        path,
    )


def _has_ratings(data: pa.Table) -> bool:
    return data.column("rating").null_count < data.num_rows


def _result(table, rows, content_hash, files, log_line, log, **extra) -> dg.MaterializeResult:
    log.info(log_line)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "content_sha256": content_hash,
            "source_files": dg.MetadataValue.json(files),
            "source_sha256": ",".join(f["sha256"] for f in files) or "none",
            "parse_errors": sum(f["parse_errors"] for f in files),
            **extra,
        },
        data_version=dg.DataVersion(content_hash),
    )


def materialize_raw_table(lake: LakeResource, table: str, log) -> dg.MaterializeResult:
    """The whole source of one raw table (a snapshot)."""
    spec = lake.spec()
    data, files = load_raw_table(spec, lake.source_folder(log=log.info), table)
    if table in ("interactions", "items"):  # the daily tables' column, empty for a snapshot
        data = data.append_column("_landed_date", pa.nulls(data.num_rows, pa.string()))
    out_path = lake.paths.raw_table(spec.name, table)
    content_hash = write_parquet_atomic(data, out_path)
    if table == "interactions":
        _write_facts(lake, _has_ratings(data), files, "snapshot")
    line = f"raw_{table}: {data.num_rows} rows from {len(files)} file(s) -> {out_path}"
    return _result(
        table, data.num_rows, content_hash, files, line, log,
        dataset=spec.name, path=dg.MetadataValue.path(str(out_path)),
    )  # fmt: skip


def materialize_landed_days(
    lake: LakeResource, table: str, days: list[str], log
) -> dg.MaterializeResult:
    """Each day's landed files of one raw table -> lake/raw/<dataset>/<table>/date=D/. A day whose
    file cannot be read is named and not written (its last good copy stays); the others go on."""
    spec, paths = lake.spec(), lake.paths
    rows, files, errors, digest, ingested = 0, [], [], hashlib.sha256(), {}
    for day in days:
        try:
            data, day_files = read_landed_day(paths, spec.name, day, table)
        except DatasetError as err:
            errors.append(f"{day}: {err}")
            continue
        digest.update(
            f"{day}:{write_parquet_atomic(data, paths.raw_day(spec.name, table, day))}\n".encode()
        )
        rows, files = rows + data.num_rows, files + day_files
        if table == "interactions":
            _write_facts(lake, _has_ratings(data), day_files, "landing")
            ingested[day] = day_sha256(paths, spec.name, day)
    record_ingested(paths, spec.name, ingested)  # what the sensor and `reclake replay` compare with
    if errors:
        others = " (the other days of the run were ingested)" if len(days) > len(errors) else ""
        raise dg.Failure(
            f"{len(errors)} landed day(s) could not be read; fix the file and deliver it again"
            f"{others}:\n" + "\n".join(errors),
        )
    line = f"raw_{table}: {rows} rows landed on {len(days)} day(s) {days[0]}..{days[-1]}"
    return _result(
        table, rows, digest.hexdigest(), files, line, log,
        dataset=spec.name, days=len(days), first_day=days[0], last_day=days[-1],
    )  # fmt: skip


def _daily_raw_asset(table: str, description: str) -> dg.AssetsDefinition:
    # a one-spec multi_asset for its backfill policy: a range of days is one run (see serving/assets.py)
    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                f"raw_{table}",
                group_name="ingest",
                code_version=INGEST_CODE_VERSION,
                description=description,
                kinds={"python", "parquet"},
            )
        ],
        name=f"raw_{table}",
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        if lake.daily:
            return materialize_landed_days(lake, table, partition_days(context), context.log)
        return materialize_raw_table(lake, table, context.log)

    return _asset


def _raw_asset(table: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{table}",
        group_name="ingest",
        code_version=INGEST_CODE_VERSION,
        description=description,
        kinds={"python", "parquet"},
    )
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        return materialize_raw_table(lake, table, context.log)

    return _asset


raw_interactions = _daily_raw_asset(
    "interactions",
    "User-item interactions as given in the source, one row per record, with source file/sha256/row; "
    "partition D: the events landed for UTC day D (or the whole source when nothing is landed).",
)
raw_items = _daily_raw_asset(
    "items",
    "Item metadata (title, year, genres, text) as given in the source; partition D: items first "
    "seen on day D. Empty if the dataset has none.",
)
raw_users = _raw_asset(
    "users", "User attributes as given in the source; empty if the dataset has none."
)
raw_item_tags = _raw_asset(
    "item_tags", "Free-text tags users put on items (ml-latest-small tags.csv); empty if none."
)

ingest_assets = [raw_interactions, raw_items, raw_users, raw_item_tags]
