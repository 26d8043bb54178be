"""Group `ingest`: raw source files -> lake/raw/<dataset>/<table>.parquet, values kept as given."""

import dagster as dg

from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.resources import LakeResource
from orchestration.defs.ingest.loaders import load_raw_table

INGEST_CODE_VERSION = "1"


def materialize_raw_table(lake: LakeResource, table: str, log) -> dg.MaterializeResult:
    spec = lake.spec()
    folder = lake.source_folder(log=log.info)
    data, files = load_raw_table(spec, folder, table)
    out_path = lake.paths.raw_table(spec.name, table)
    content_hash = write_parquet_atomic(data, out_path)
    parse_errors = sum(f["parse_errors"] for f in files)
    if table == "interactions":
        # Facts about the dataset that dbt needs (rating scale) travel as a file, like every hand-over.
        write_json_atomic(
            {
                "dataset": spec.name,
                "kind": spec.kind,
                "rating_min": spec.rating_scale[0] if spec.rating_scale else None,
                "rating_max": spec.rating_scale[1] if spec.rating_scale else None,
                "has_ratings": data.column("rating").null_count < data.num_rows,
                "files": files,
            },
            lake.paths.dataset_facts(spec.name),
        )
    log.info(f"raw_{table}: {data.num_rows} rows from {len(files)} file(s) -> {out_path}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": data.num_rows,
            "content_sha256": content_hash,
            "dataset": spec.name,
            "path": dg.MetadataValue.path(str(out_path)),
            "source_files": dg.MetadataValue.json(files),
            "source_sha256": ",".join(f["sha256"] for f in files) or "none",
            "parse_errors": parse_errors,
        },
        data_version=dg.DataVersion(content_hash),
    )


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


raw_interactions = _raw_asset(
    "interactions",
    "User-item interactions as given in the source, one row per record, with source file/sha256/row.",
)
raw_items = _raw_asset(
    "items",
    "Item metadata (title, year, genres, text) as given in the source; empty if the dataset has none.",
)
raw_users = _raw_asset(
    "users", "User attributes as given in the source; empty if the dataset has none."
)
raw_item_tags = _raw_asset(
    "item_tags", "Free-text tags users put on items (ml-latest-small tags.csv); empty if none."
)

ingest_assets = [raw_interactions, raw_items, raw_users, raw_item_tags]
