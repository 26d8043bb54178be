"""Group `features`: the dbt feature marts served through Feast (feature_repo/).

feast_feature_sources  feat_user_stats / feat_item_stats -> lake/features/{user,item}_stats.parquet
feast_registry         `feast apply` of feature_repo/ (entities, views, services)
feast_online_store     materialization into the SQLite online store, incremental
training_set           get_historical_features(ranking_v1) for every train interaction
"""

from pathlib import Path

import dagster as dg

from orchestration.core.feast import feature_store
from orchestration.core.partitions import run_days
from orchestration.core.resources import LakeResource
from orchestration.core.unchanged import Unchanged
from orchestration.defs.features import store as feast_store

FEATURES_CODE_VERSION = "1"


@dg.asset(
    group_name="features",
    code_version=FEATURES_CODE_VERSION,
    deps=["feat_user_stats", "feat_item_stats"],
    kinds={"parquet", "feast"},
    description="The feature marts as the parquet files Feast's FileSources read (timestamps in UTC).",
)
def feast_feature_sources(
    context: dg.AssetExecutionContext, lake: LakeResource
) -> dg.MaterializeResult:
    present = lambda last: all(Path(p).exists() for p in (last.get("paths") or []))  # noqa: E731
    if (memo := Unchanged(context, outputs_present=present)).skip:
        return memo.result
    facts = feast_store.export_feature_sources(lake.paths)
    for view, f in facts.items():
        context.log.info(
            f"{view}: {f['rows']} rows, {f['entities']} entities, {f['features']} features -> {f['path']}"
        )
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(f["rows"] for f in facts.values()),
                "paths": dg.MetadataValue.json([str(f["path"]) for f in facts.values()]),
                "views": dg.MetadataValue.json(
                    {
                        v: {
                            k: f[k]
                            for k in ("rows", "entities", "features", "null_rates", "sha256")
                        }
                        for v, f in facts.items()
                    }
                ),
                "feature_count": sum(f["features"] for f in facts.values()),
                "content_sha256": ",".join(f["sha256"] for f in facts.values()),
            },
            data_version=dg.DataVersion("-".join(f["sha256"][:16] for f in facts.values())),
        )
    )


@dg.asset(
    group_name="features",
    code_version=FEATURES_CODE_VERSION,
    deps=[feast_feature_sources],
    kinds={"feast"},
    description="`feast apply` of feature_repo/: entities user/item, views user_stats/item_stats, "
    "services ranking_v1/serving_v1.",
)
def feast_registry(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    repo_sha256 = feast_store.repo_sha256(lake.engine)
    if lake.daily and (kept := _registry_kept(context, repo_sha256)) is not None:
        return kept
    # the registry file named in feature_store.yaml, as recorded by the last apply
    memo = Unchanged(
        context,
        config={"engine": lake.engine},
        outputs_present=lambda last: Path(last.get("registry") or "/nonexistent").exists(),
    )
    if memo.skip:
        return memo.result
    context.log.info(feast_store.feast_apply(lake.paths, lake.engine))
    store = feature_store(lake.home_path, lake.engine)
    registry_path = Path(store.config.registry.path)
    views = sorted(v.name for v in store.list_feature_views())
    services = sorted(s.name for s in store.list_feature_services())
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "feature_views": ", ".join(views),
                "feature_services": ", ".join(services),
                "entities": ", ".join(sorted(e.name for e in store.list_entities())),
                "registry": dg.MetadataValue.path(str(registry_path)),
                "repo_sha256": repo_sha256,
            }
        )
    )


def _registry_kept(context, repo_sha256: str) -> dg.MaterializeResult | None:
    """In the daily loop a day's new rows do not change what `feast apply` registers (views,
    services, source paths): the last apply stands while feature_repo/ is the same."""
    event = context.instance.get_latest_materialization_event(context.asset_key)
    last = event and event.asset_materialization.metadata
    if not last or "repo_sha256" not in last or last["repo_sha256"].value != repo_sha256:
        return None
    if not Path(last["registry"].value).exists():
        return None
    context.log.info(
        "feast_registry: feature_repo/ unchanged since the last apply: not applied again"
    )
    return dg.MaterializeResult(metadata={**last, "skipped": "feature_repo/ unchanged"})


class OnlineStoreConfig(dg.Config):
    full_refresh: bool = False  # reload every view's whole window, not just what is new


@dg.asset(
    group_name="features",
    code_version=FEATURES_CODE_VERSION,
    deps=[feast_registry, "item_text_embeddings", "user_profile_embeddings"],
    kinds={"feast", "sqlite"},
    description="Latest feature values per user/item in Feast's online store, materialized incrementally.",
)
def feast_online_store(
    context: dg.AssetExecutionContext, config: OnlineStoreConfig, lake: LakeResource
) -> dg.MaterializeResult:
    def present(last: dict) -> bool:
        return Path(last.get("online_store") or "/nonexistent").exists() and not config.full_refresh

    if (memo := Unchanged(context, config={"engine": lake.engine}, outputs_present=present)).skip:
        return memo.result
    store = feature_store(lake.home_path, lake.engine)
    online_store = Path(store.config.online_store.path)
    sources = feast_store.source_facts(lake.paths)
    windows = feast_store.materialize_online(
        store, sources, lake.paths, config.full_refresh, context.log.info,
        run_days(context) if lake.daily else None,
    )  # fmt: skip
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "windows": dg.MetadataValue.json(windows),
                "views_loaded": sum(not w["skipped"] for w in windows.values()),
                "entities_online": dg.MetadataValue.json(
                    {v: f["entities"] for v, f in sources.items()}
                ),
                "source_sha256": dg.MetadataValue.json(
                    {v: f["sha256"] for v, f in sources.items()}
                ),
                "online_store": dg.MetadataValue.path(str(online_store)),
            }
        )
    )


@dg.asset(
    group_name="features",
    code_version=FEATURES_CODE_VERSION,
    deps=[feast_registry, "splits"],
    kinds={"feast", "parquet"},
    description="Point-in-time training set: every train interaction with the ranking_v1 features "
    "as of just before it.",
)
def training_set(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    present = lambda last: Path(last.get("path", "/nonexistent")).exists()  # noqa: E731
    if (memo := Unchanged(context, config={"engine": lake.engine}, outputs_present=present)).skip:
        return memo.result
    entities = feast_store.training_entities(lake.warehouse_path)
    context.log.info(
        f"joining {feast_store.TRAINING_SERVICE} features onto {len(entities)} train interactions "
        f"({'Spark' if lake.engine == 'spark' else 'DuckDB'} offline store)"
    )
    store = feature_store(lake.home_path, lake.engine)
    frame = feast_store.build_training_set(store, entities)
    path, digest = feast_store.write_training_set(frame, lake.paths)
    feature_columns = [c for c in frame.columns if "__" in c]
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(frame),
                "feature_count": len(feature_columns),
                "null_rates": dg.MetadataValue.json(feast_store.null_rates(frame, feature_columns)),
                "path": dg.MetadataValue.path(str(path)),
                "content_sha256": digest,
            },
            data_version=dg.DataVersion(digest),
        )
    )


features_assets = [feast_feature_sources, feast_registry, feast_online_store, training_set]
