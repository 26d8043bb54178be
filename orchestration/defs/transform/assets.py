"""Group `transform`: the dbt project in transforms/, run by dagster-dbt.

Two dbt selections, so the blocking checks on fct_interactions sit between them:
  dbt_cleaning  raw -> stg_* -> int_interactions_checked -> fct_interactions + quarantine_interactions
                partitioned by day like the raw tables: with a landing zone, a run replaces its
                days in the two incremental tables (a range of days is one run)
  dbt_marts     the three protocols' splits, dim_items, dim_users, feat_*_stats (whole tables)
dbt tests run as Dagster asset checks; a failing error-severity test fails the step (and downstream).

RECLAKE_ENGINE (LakeResource.engine) picks the dbt target: `duckdb` builds the tables in
warehouse.duckdb; `spark` builds the same models with dbt-spark into parquet under lake/spark/, and
the marts are then exposed in warehouse.duckdb as views over those files (orchestration/core/spark.py).
"""

import hashlib
import json

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from orchestration.core.partitions import daily_partitions, next_day, partition_days
from orchestration.core.resources import LakeResource
from orchestration.core.settings import DBT_PROJECT_DIR, parse_dbt_project, under_dagster_dev
from orchestration.core.spark import engine_problem, publish_spark_tables
from orchestration.core.unchanged import (
    CONFIG_KEY,
    DATA_VERSION_TAG,
    SKIPPED_KEY,
    config_sha256,
    current_input_version,
    unchanged_reason,
)
from orchestration.core.warehouse import connect, table_fingerprint, view_sql
from orchestration.defs.transform.expectations import VALID_EVENT_TS

if under_dagster_dev():
    parse_dbt_project()  # under `dg dev`, re-parse on each (re)load so the manifest matches the SQL
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# dbt unit tests check logic, not data: CI runs them on both engines; pipeline runs leave them out.
PRODUCTION = ["--exclude-resource-type", "unit_test"]
CLEANING_SELECT = (
    "stg_interactions stg_items stg_users stg_item_tags int_interactions_checked fct_interactions "
    "quarantine_interactions"
)
MARTS_SELECT = (
    "splits timeline_splits cold_item_splits cold_user_splits dim_items dim_users feat_user_stats "
    "feat_item_stats"
)
translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def dbt_vars(lake: LakeResource, days: list[str] | None = None) -> dict:
    """The dataset facts dbt needs, read from the manifest the ingest stage wrote, and for a daily
    run the window of landed days its incremental models replace (macros/daily_window.sql). Their
    fingerprint decides whether the models must be rebuilt; the data home travels beside them
    (dbt_invocation_vars)."""
    manifest_path = lake.dataset_facts()
    if not manifest_path.exists():
        raise dg.Failure(
            f"{manifest_path} not found: materialize the `ingest` group (raw_interactions) first"
        )
    facts = json.loads(manifest_path.read_text())
    variables = {
        "dataset": facts["dataset"],
        "has_ratings": bool(facts["has_ratings"]),
        "min_event_ts": VALID_EVENT_TS[0],
        "max_event_ts": VALID_EVENT_TS[1],
    }
    if facts["has_ratings"] and facts["rating_min"] is not None:
        variables |= {"rating_min": facts["rating_min"], "rating_max": facts["rating_max"]}
    if facts.get("layout") == "landing":
        variables["raw_layout"] = "landing"
        if days:
            variables |= {"window_start": days[0], "window_end": next_day(days[-1])}
    return variables


def needs_full_refresh(lake: LakeResource, variables: dict) -> bool:
    """A daily run on a warehouse last built from a snapshot (its rows have no landed day) rebuilds
    the incremental models from every landed day instead of adding one day to the snapshot."""
    if "window_start" not in variables or not lake.warehouse_path.exists():
        return False
    with connect(lake.warehouse_path) as con:
        try:
            return bool(
                con.execute(
                    "select count(*) from main.fct_interactions where landed_date is null"
                ).fetchone()[0]
            )
        except duckdb.Error:  # no table yet, or one from before landed_date existed
            return True


def dbt_invocation_vars(lake: LakeResource, variables: dict) -> str:
    """--vars of a dbt run: the dataset facts and the data home (the profile and the sources read
    `var('reclake_home')`, so nothing passes through this process's environment)."""
    return json.dumps({**variables, "reclake_home": str(lake.home_path)})


def _failed_nodes(invocation) -> list[str]:
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except Exception:  # noqa: BLE001 - no artifact means dbt failed before running anything
        return []
    return [
        f"{r['unique_id']}: {r['status']}"
        + (f" ({r.get('failures')} failing rows)" if r.get("failures") else "")
        + (f" - {r['message']}" if r.get("message") and r["status"] == "error" else "")
        for r in results
        if r["status"] in ("error", "fail")
    ]


def _topological(context: dg.AssetExecutionContext) -> list[dg.AssetKey]:
    selected, ordered = set(context.selected_asset_keys), []

    def visit(key):
        if key in selected and key not in ordered:
            for dep in sorted(context.assets_def.asset_deps[key], key=str):
                visit(dep)
            ordered.append(key)

    for key in sorted(selected, key=str):
        visit(key)
    return ordered


def _unchanged_models(
    context: dg.AssetExecutionContext, lake: LakeResource, config: dict
) -> dict | None:
    """Each selected model's last materialization when none of them needs rebuilding: same SQL
    (code version), same vars, same input data versions, and the table still holds that content."""
    lasts = {}
    for key in _topological(context):  # a multi-asset yields its outputs upstream-first
        last, reason = unchanged_reason(context, key, config)
        if last is None:
            context.log.info(f"dbt: building ({key.to_user_string()}: {reason})")
            return None
        lasts[key] = (last, reason)
    if not lake.warehouse_path.exists():
        return None
    with connect(lake.warehouse_path) as con:
        for key, (last, _) in lasts.items():
            try:
                _, digest = fingerprint(context, con, key, {}, lake.engine)
            except duckdb.Error:
                return None
            if digest != last.tags.get(DATA_VERSION_TAG):
                context.log.info(
                    f"dbt: building ({key.to_user_string()} no longer holds its last content)"
                )
                return None
    return lasts


def fingerprint(
    context, con, key: dg.AssetKey, built: dict[dg.AssetKey, str], engine: str
) -> tuple[int | None, str]:
    """(rows, content hash) of a table. A dbt view holds no rows (hashing it would compute it): its
    version is its SQL and its inputs' versions, `built` in this step or recorded (rows None)."""
    sql = view_sql(con, key.path[-1]) if engine == "duckdb" else None
    if sql is None:
        return table_fingerprint(con, key.path[-1])
    partitioned = context.assets_def.partitions_def is not None and context.has_partition_key
    partition = context.partition_key if partitioned else None

    def version(dep: dg.AssetKey) -> str | None:
        if dep not in built:
            return current_input_version(context, dep, partition)
        # as current_input_version will read it once recorded (a same-partition input is hashed)
        return hashlib.sha256(built[dep].encode()).hexdigest() if partition else built[dep]

    inputs = {dep.to_user_string(): version(dep) for dep in context.assets_def.asset_deps[key]}
    return None, hashlib.md5((sql + json.dumps(inputs, sort_keys=True)).encode()).hexdigest()


def run_dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource):
    """`dbt build` the selected models; attach row counts, content hashes and data versions. When
    nothing they depend on changed, the models are not rebuilt: their tests still run (`dbt test`).
    dbt.cli gets the op's context, which dagster-dbt uses either way (it reads the op's tags, which
    AssetExecutionContext.op, deprecated, would hand it)."""
    if problem := engine_problem(lake.engine):
        raise dg.Failure(problem)
    partitioned = context.assets_def.partitions_def is not None
    variables = dbt_vars(lake, partition_days(context) if partitioned else None)
    target = ["--target", lake.engine]
    if needs_full_refresh(lake, variables):
        context.log.info(
            "dbt: the warehouse was built from a snapshot: full refresh from the landed days"
        )
        target.append("--full-refresh")
    unchanged = _unchanged_models(context, lake, {**variables, "engine": lake.engine})
    if unchanged is not None:
        context.log.info(
            f"dbt: {len(unchanged)} models unchanged, not rebuilt; running their tests"
        )
        for key, (last, reason) in unchanged.items():
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    **{k: v for k, v in last.metadata.items() if k != SKIPPED_KEY},
                    SKIPPED_KEY: reason,
                },
                data_version=dg.DataVersion(last.tags[DATA_VERSION_TAG]),
            )
        invocation = dbt.cli(
            ["test", *target, *PRODUCTION, "--vars", dbt_invocation_vars(lake, variables)],
            context=context.op_execution_context,
            raise_on_error=False,
        )
        yield from invocation.stream()
        if not invocation.is_successful():
            failed = _failed_nodes(invocation) or ["see the dbt log above"]
            raise dg.Failure(
                description="dbt test failed; downstream assets will not run:\n" + "\n".join(failed)
            )
        return
    invocation = dbt.cli(
        ["build", *target, *PRODUCTION, "--vars", dbt_invocation_vars(lake, variables)],
        context=context.op_execution_context,
        raise_on_error=False,
    )
    events = list(invocation.stream())
    if lake.engine == "spark":
        names = [
            context.asset_key_for_output(e.output_name).path[-1]
            for e in events
            if isinstance(e, dg.Output)
        ]
        published = publish_spark_tables(lake.paths, names)
        context.log.info(
            f"spark: {len(published)} tables exposed in {lake.warehouse_path.name} as views: {', '.join(published)}"
        )
    # Fingerprint after dbt exits: DuckDB allows one writer, and dbt holds the file while it runs.
    fingerprints, built = {}, {}
    if lake.warehouse_path.exists():
        with connect(lake.warehouse_path) as con:
            for event in events:  # in dbt's order: a view's inputs come before it
                if isinstance(event, dg.Output):
                    key = context.asset_key_for_output(event.output_name)
                    try:
                        fingerprints[event.output_name] = fingerprint(
                            context, con, key, built, lake.engine
                        )
                    except duckdb.CatalogException:  # a Spark-side view (stg_/int_): no fingerprint
                        continue
                    built[key] = fingerprints[event.output_name][1]
    for event in events:
        if isinstance(event, dg.Output) and event.output_name in fingerprints:
            rows, digest = fingerprints[event.output_name]
            yield dg.MaterializeResult(
                asset_key=context.asset_key_for_output(event.output_name),
                metadata={
                    **event.metadata,
                    **({"dagster/row_count": rows} if rows is not None else {}),
                    "content_md5": digest,
                    CONFIG_KEY: config_sha256({**variables, "engine": lake.engine}),
                },
                data_version=dg.DataVersion(digest),
            )
        else:
            yield event
    if not invocation.is_successful():
        failed = _failed_nodes(invocation) or ["see the dbt log above"]
        raise dg.Failure(
            description="dbt build failed; downstream assets will not run:\n" + "\n".join(failed)
        )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    select=CLEANING_SELECT,
    name="dbt_cleaning",
    dagster_dbt_translator=translator,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def dbt_cleaning(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource):
    yield from run_dbt_build(context, dbt, lake)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    select=MARTS_SELECT,
    name="dbt_marts",
    dagster_dbt_translator=translator,
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, lake: LakeResource):
    yield from run_dbt_build(context, dbt, lake)


transform_assets = [dbt_cleaning, dbt_marts]
