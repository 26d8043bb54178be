"""Feast over the lake: export the feature marts, apply the repo, materialize, build training sets.

Plain functions (no Dagster), called by the `features` assets and by tests.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from models.common.files import sha256_file
from orchestration.core.feast import BEFORE_EVENT, TRAINING_SERVICE, feast_command_env, store_yaml
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.paths import Lake
from orchestration.core.settings import FEAST_EXECUTABLE, FEATURE_REPO_DIR
from orchestration.core.sql import quote_ident
from orchestration.core.warehouse import connect, query

# Feast view name -> dbt mart that feeds it (exported to the view's source file, online_source_path).
FEATURE_SOURCES = {"user_stats": "feat_user_stats", "item_stats": "feat_item_stats"}
# Every view materialized online: the stats marts, and the embeddings the llm group writes.
ONLINE_VIEWS = ("user_stats", "item_stats", "item_text_embedding", "user_profile_embedding")


def repo_sha256(engine: str) -> str:
    """One hash over the Feast repo's files and the engine: what `feast apply` registers."""
    digest = hashlib.sha256(engine.encode())
    for path in sorted(FEATURE_REPO_DIR.glob("*")):
        if path.is_file() and path.suffix in (".py", ".yaml"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def online_source_path(lake: Lake, view: str) -> Path:
    """The parquet a view's Feast source reads (feature_repo/data_sources.py declares the same)."""
    return {
        "user_stats": lake.features("user_stats"),
        "item_stats": lake.features("item_stats"),
        "item_text_embedding": lake.embeddings("items"),
        "user_profile_embedding": lake.embeddings("users"),
    }[view]


def null_rates(frame: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    return (
        {c: round(float(frame[c].isna().mean()), 6) for c in columns}
        if len(frame)
        else {c: 0.0 for c in columns}
    )


def export_feature_sources(lake: Lake) -> dict[str, dict]:
    """Write each feature mart to the parquet its Feast FileSource reads; return per-view facts."""
    facts = {}
    with connect(lake.warehouse) as con:
        for view, mart in FEATURE_SOURCES.items():
            # the relational API hands Arrow over without the DB-API result's extra copy
            table = con.sql(
                f"select * from main.{quote_ident(mart)} order by 1, event_timestamp"
            ).to_arrow_table()
            # Feast reads timestamps as UTC: store them tz-aware so no reader has to guess.
            index = table.schema.get_field_index("event_timestamp")
            table = table.set_column(
                index, "event_timestamp", table.column(index).cast(pa.timestamp("us", tz="UTC"))
            )
            path = online_source_path(lake, view)
            digest = write_parquet_atomic(table, path)
            frame = table.to_pandas()
            feature_columns = [
                c for c in table.column_names if c not in ("event_timestamp", table.column_names[0])
            ]
            facts[view] = {
                "path": str(path),
                "rows": table.num_rows,
                "entities": int(frame.iloc[:, 0].nunique()),
                "features": len(feature_columns),
                "null_rates": null_rates(frame, feature_columns),
                "sha256": digest,
            }
    return facts


def feast_apply(lake: Lake, engine: str = "duckdb") -> str:
    """`feast apply` through Feast's own CLI, exactly as a user runs it; returns its output."""
    lake.feast_dir.mkdir(parents=True, exist_ok=True)
    # A SparkSource is validated by reading its files, and the embeddings and recommendations files
    # are written by later stages: on Spark, sources are checked when they are read, not at apply.
    skip = ["--skip-source-validation"] if engine == "spark" else []
    result = subprocess.run(
        [
            FEAST_EXECUTABLE,
            "-c",
            str(FEATURE_REPO_DIR),
            "-f",
            str(store_yaml(engine)),
            "apply",
            *skip,
        ],
        capture_output=True,
        text=True,
        env=feast_command_env(lake.home, engine),
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"feast apply failed in {FEATURE_REPO_DIR}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def materialize_online(
    store,
    sources: dict[str, dict],
    lake: Lake,
    full_refresh: bool = False,
    log=print,
    days: tuple[str, str] | None = None,
) -> dict:
    """Load each view's latest values into the online store, incrementally.

    The window starts where the last materialization ended (Feast records it per view) and ends
    just after the newest source row. A source whose content changed since the last load (its hash,
    kept in feast/materialized_sources.json) or ``full_refresh`` starts at its oldest row instead:
    a change under an old timestamp is only caught that way. Online rows are keyed by entity, so a
    repeated window overwrites the same keys with the same values: nothing is written twice.
    In a landed day's run (`days`: its first and last day) the stats views load exactly those days,
    materialize(first, last + 1), never "up to now" (Feast's materialize-incremental would start at
    now - ttl on its first call and skip 1997).
    """
    state_path = lake.feast_state("materialized_sources")
    loaded = json.loads(state_path.read_text()) if state_path.exists() else {}
    windows = {}
    for view_name, facts in sources.items():
        view = store.get_feature_view(view_name)
        if pd.isna(facts["min_ts"]):  # e.g. no user profile yet (an LLM budget of 0)
            windows[view_name] = {
                "start": None,
                "end": None,
                "full_refresh": False,
                "skipped": True,
            }
            log(f"{view_name}: its source has no rows yet; nothing to load")
            continue
        end = facts["max_ts"].to_pydatetime() + timedelta(seconds=1)
        start = facts["min_ts"].to_pydatetime()
        reload_all = full_refresh or loaded.get(view_name) != facts["sha256"]
        if days and view_name in FEATURE_SOURCES and not full_refresh:
            start = datetime.fromisoformat(days[0]).replace(tzinfo=UTC)
            end = datetime.fromisoformat(days[1]).replace(tzinfo=UTC) + timedelta(days=1)
            reload_all = False
        elif not reload_all and view.most_recent_end_time is not None:
            start = max(start, view.most_recent_end_time.astimezone(UTC))
        window = {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "full_refresh": reload_all,
            "skipped": start >= end,
        }
        windows[view_name] = window
        if window["skipped"]:
            log(f"{view_name}: online store already holds everything up to {end.isoformat()}")
            continue
        log(f"{view_name}: materializing {start.isoformat()} .. {end.isoformat()}")
        store.materialize(start_date=start, end_date=end, feature_views=[view_name])
        loaded[view_name] = facts["sha256"]
        write_json_atomic(loaded, state_path)
    return windows


def training_entities(warehouse: Path) -> pd.DataFrame:
    """Train interactions as Feast's entity dataframe: features are joined as of just before each event."""
    frame = query(
        warehouse,
        "select user_id, item_id, event_ts, rating, source_file, source_row from main.splits "
        "where split = 'train' order by user_id, event_ts, source_file, source_row",
    )
    frame["event_timestamp"] = frame["event_ts"].dt.tz_localize("UTC") - BEFORE_EVENT
    return frame


def build_training_set(store, entities: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of the training service's features onto the entity rows (Feast offline store)."""
    service = store.get_feature_service(TRAINING_SERVICE)
    joined = store.get_historical_features(
        entity_df=entities, features=service, full_feature_names=True
    ).to_df()
    # Feast returns rows in its own order: restore the entities' order for stable, comparable output.
    joined = joined.sort_values(["user_id", "event_ts", "source_file", "source_row"], kind="stable")
    # The Spark offline store hands timestamps back without a zone (in its session's zone, UTC) and in
    # ns; DuckDB's come back UTC-aware in us: one type, so both engines write the same file.
    for column in joined.columns:
        if pd.api.types.is_datetime64_any_dtype(joined[column]):
            values = joined[column]
            values = (
                values.dt.tz_localize("UTC")
                if values.dt.tz is None
                else values.dt.tz_convert("UTC")
            )
            joined[column] = values.astype("datetime64[us, UTC]")
    return joined.reset_index(drop=True)


def write_training_set(frame: pd.DataFrame, lake: Lake) -> tuple[Path, str]:
    path = lake.features("training_set")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return path, write_parquet_atomic(table, path)


def source_facts(lake: Lake) -> dict[str, dict]:
    """Time range, entity count and hash of each exported source, read back from its parquet."""
    facts = {}
    with duckdb.connect() as con:  # an in-memory database: it only reads the parquet files
        for view in ONLINE_VIEWS:
            path = online_source_path(lake, view)
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} not found: materialize the assets upstream of feast_online_store first"
                )
            entity = con.execute(
                "select column_name from (describe select * from read_parquet(?)) limit 1",
                [str(path)],
            ).fetchone()[0]
            min_ts, max_ts, entities = con.execute(
                "select min(event_timestamp), max(event_timestamp), "
                f"count(distinct {quote_ident(entity)}) from read_parquet(?)",
                [str(path)],
            ).fetchone()
            facts[view] = {
                "min_ts": pd.Timestamp(min_ts).tz_convert("UTC"),
                "max_ts": pd.Timestamp(max_ts).tz_convert("UTC"),
                "entities": entities,
                "sha256": sha256_file(path),
            }
    return facts
