"""Group `training`: `two_stage_model`, LightGBM's LambdaMART re-ranking the best other model's top-N
(models/recsys/two_stage.py) over Feast `ranking_v1` stats and LLM features, registered like the others.

    base        the latest complete version with the best valid NDCG@10 among the other models on this
                data version (RECLAKE_TRAIN_TWO_STAGE_BASE names one instead); its eval_topk must exist
    features    Feast user_stats/item_stats as of just before each held-out event; the LLM item and
                user profile vectors (lake/embeddings); the raw score of the newest reclake-judge
                version on this data version (its probe is fitted on train rows only)
    labels      the VALID item; the valid score the gate reads is cross-fitted over users; test only reports

Every input is checked before anything is registered: a missing eval_topk, a user with fewer than N
candidates, or a candidate user/item that Feast has no stats for fails the run naming it.
"""

import time

import dagster as dg
import numpy as np
import pandas as pd

from models import registry
from models.common.device import torch_threads
from models.common.files import sha256_file
from models.recsys.base import FitResult
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import text_vectors
from models.recsys.two_stage import (
    Candidates,
    TwoStage,
    TwoStageConfig,
    candidates,
    cross_fitted,
    evaluate_reranked,
    feature_frame,
    fit_ranker,
    labels,
)
from orchestration.core.feast import BEFORE_EVENT, feature_store, ranking_stats
from orchestration.core.lineage import raw_files_sha256
from orchestration.core.resources import LakeResource
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import held_out_moments, load_splits
from orchestration.defs.training import plots
from orchestration.defs.training.registration import reap_crashed, register, version_in_place
from orchestration.defs.training.resources import TrainingResource

TWO_STAGE_CODE_VERSION = "1"


def pick_base(lake: LakeResource, data_version: str, wanted: str | None):
    """The base model version: `wanted`'s latest, or the best valid NDCG@10 among the other models."""
    client = registry.connect(lake.paths.mlflow_dir)
    latest = {
        name: v
        for name, v in registry.latest_per_model(client, data_version).items()
        if name != TwoStage.name
    }
    if wanted:
        latest = {wanted: latest[wanted]} if wanted in latest else {}
    if not latest:
        raise dg.Failure(
            f"no complete version of {wanted or 'any base model'} on data version {data_version}: "
            "materialize the recommender assets first"
        )
    valid_tag = registry.metric_name("valid", "ndcg@10")
    base = max(latest.values(), key=lambda v: (float(v.tags[valid_tag]), -int(v.version)))
    name, version = base.tags["model_name"], str(base.version)
    topk = lake.paths.eval_topk(name, version)
    if not topk.exists():
        raise dg.Failure(
            f"base model {name} v{version} has no eval_topk ({topk}): it was not evaluated by the "
            f"protocol; re-materialize {name}_model. Nothing was registered."
        )
    if not registry.artifacts_present(client, version):
        raise dg.Failure(
            f"base model {name} v{version}'s artifacts are missing; re-materialize {name}_model"
        )
    return name, version, registry.load_version(client, version)


def checked_stats(
    store, data: SplitData, cands: Candidates, moments: pd.Series, known: dict[str, set]
) -> pd.DataFrame:
    """ranking_v1 for every candidate row as of just before the user's held-out event. The stats
    views are built from TRAIN rows: a candidate user or item with train interactions but no row in
    its view is an error naming it (a stale or partial export); one without train interactions, or
    a moment before its first row, is a NaN that says "nothing yet", and the ranker reads it so."""
    in_candidates = {
        "user_stats": set(data.users[cands.users].astype(str)),
        "item_stats": set(data.items[np.unique(cands.items)].astype(str)),
    }
    in_train = {
        "user_stats": set(data.users[[u for u, h in enumerate(data.train) if len(h)]].astype(str)),
        "item_stats": set(data.items[np.flatnonzero(data.train_counts())].astype(str)),
    }
    for view, ids in in_candidates.items():
        missing = sorted((ids & in_train[view]) - known[view])
        if missing:
            entity = view.split("_")[0]
            raise dg.Failure(
                f"Feast view {view} has no row for {entity} {missing[0]} ({len(missing)} such {entity}s with "
                f"train interactions), so feature {view}__n_interactions and the rest of {view} are "
                f"missing for it ({cands.stage} candidates); re-materialize feast_feature_sources. "
                "Nothing was registered."
            )
    return candidate_stats(store, data, cands, moments)


def candidate_stats(store, data: SplitData, cands: Candidates, moments: pd.Series) -> pd.DataFrame:
    """ranking_v1 for every candidate row, as of just before the user's held-out event."""
    n = cands.items.shape[1]
    moments_per_row = (
        pd.to_datetime(np.repeat(moments.loc[cands.users].to_numpy(), n)) - BEFORE_EVENT
    )
    return ranking_stats(
        store,
        np.repeat(data.users[cands.users], n),
        data.items[cands.items.ravel()],
        moments_per_row,
        TwoStageConfig.feature_service,
    )


@dg.asset(
    group_name="training",
    code_version=TWO_STAGE_CODE_VERSION,
    deps=[
        "ease_model",
        "sasrec_model",
        "llm_sasrec_model",
        "popularity_model",
        "feast_registry",
        "item_text_embeddings",
        "user_profile_embeddings",
        "judge_probe",
    ],
    kinds={"lightgbm", "feast", "mlflow"},
    description="LambdaMART re-ranking the best base model's top-N with Feast stats and LLM features; "
    "valid cross-fitted over users; registered as a reclake-recommender version.",
)
def two_stage_model(
    context: dg.AssetExecutionContext, lake: LakeResource, training: TrainingResource
) -> dg.MaterializeResult:
    data, data_version = load_splits(lake.warehouse_path)
    base_name, base_version, base = pick_base(lake, data_version, training.two_stage_base)
    judge = registry.latest_judge_probe(registry.connect(lake.paths.mlflow_dir), data_version)
    if judge is None or not judge[1].is_file():
        raise dg.Failure(
            f"no reclake-judge version with its probe file on data version {data_version}: "
            "materialize judge_probe first"
        )
    judge_version, probe_path = judge
    paths = {
        "item_text_embeddings": lake.paths.embeddings("items"),
        "user_profile_embeddings": lake.paths.embeddings("users"),
        "judge_probe": probe_path,
    }
    inputs = {
        "base_model": base_name,
        "base_version": base_version,
        "feature_service": TwoStageConfig.feature_service,
        "judge_version": judge_version,
        **{f"{name}_sha256": sha256_file(path) for name, path in paths.items()},
    }
    memo = Unchanged(
        context,
        config={**inputs, "n": training.two_stage_n, "seed": training.seed},
        outputs_present=lambda last: version_in_place(
            lake, TwoStage.name, last.get("model_version")
        ),
    )
    if memo.skip:
        return memo.result
    if list(base.items) != list(data.items) or list(base.users) != list(data.users):
        raise dg.Failure(
            f"base model {base_name} v{base_version} was trained on other ids than data version "
            f"{data_version}; re-materialize it"
        )
    config = TwoStageConfig(
        n=training.two_stage_n,
        seed=training.seed,
        threads=training.torch_threads,
        device=base.model.device,
    )
    started = time.perf_counter()
    store = feature_store(lake.home_path, lake.engine)
    known = {
        view: set(
            pd.read_parquet(lake.paths.features(view), columns=[view.split("_")[0] + "_id"])
            .iloc[:, 0]
            .astype(str)
        )
        for view in ("user_stats", "item_stats")
    }
    item_vectors, _ = text_vectors(
        data.items, pd.read_parquet(paths["item_text_embeddings"]), "item_id", ["profile_embedding"]
    )
    user_vectors, _ = text_vectors(
        data.users,
        pd.read_parquet(paths["user_profile_embeddings"]),
        "user_id",
        ["profile_embedding"],
    )
    model = TwoStage(
        config,
        base.model,
        None,
        item_vectors,
        user_vectors,
        probe_path.read_bytes(),
        data.users,
        data.items,
    )
    frames = {}
    with torch_threads(training.torch_threads):
        for stage in ("valid", "test"):
            try:
                cands = candidates(base.model, data, stage, config.n)
            except ValueError as err:
                raise dg.Failure(
                    f"base model {base_name} v{base_version}: {err}. Nothing was registered."
                ) from None
            stats = checked_stats(
                store, data, cands, held_out_moments(lake.warehouse_path, data, stage), known
            )
            frames[stage] = (
                cands,
                feature_frame(
                    cands, data.histories(cands.users, stage), model.sources(stats), config.groups
                ),
            )
            context.log.info(
                f"two_stage: {stage} features for {len(cands.users)} users x {config.n} candidates "
                f"of {base_name} v{base_version} ({time.perf_counter() - started:.0f} s)"
            )
    (valid_cands, valid_frame), (test_cands, test_frame) = frames["valid"], frames["test"]
    y = labels(valid_cands, data)
    valid, _ = cross_fitted(valid_frame, valid_cands, data, config)  # the gate's score: out of fold
    model.ranker = fit_ranker(valid_frame, y, valid_cands.group_sizes, config).booster_
    test = evaluate_reranked(model.ranker, test_frame, test_cands, data, config)
    with_label = float(y.reshape(len(valid_cands.users), -1).any(1).mean())
    context.log.info(
        f"two_stage over {base_name} v{base_version}: valid (cross-fitted) NDCG@10 "
        f"{valid.metrics['ndcg@10']:.4f}; valid item among the candidates for {with_label:.1%} of users"
    )
    fit = FitResult(
        best_valid_ndcg10=valid.metrics["ndcg@10"], seconds=time.perf_counter() - started
    )
    reap_crashed(context, lake)
    gains = pd.Series(model.ranker.feature_importance("gain"), index=model.ranker.feature_name())
    result = register(
        context,
        lake,
        model,
        data,
        data_version,
        fit,
        valid,
        test,
        lambda folder: plots.feature_gains(gains, folder / "two_stage_feature_gain.png"),
        metadata={
            "feature_gain": dg.MetadataValue.json(
                {k: round(float(v), 2) for k, v in gains.items()}
            ),
            "base": f"{base_name} v{base_version}",
            "valid_is": "cross-fitted over users",
        },
        **inputs,
        raw_files_sha256=raw_files_sha256(lake.dataset_facts()),
        valid_item_among_candidates=f"{with_label:.4f}",
    )
    return memo.stamp(result)
