"""The two-stage ranker's inputs (the asset is two_stage.py): the base model version, the tuned
judge's probe, the LLM vectors, Feast's point-in-time stats checked per candidate, and the feature
frames of the valid and test candidates."""

import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from models import registry
from models.common.files import sha256_file
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import text_vectors
from models.recsys.two_stage import TwoStage
from models.recsys.two_stage_features import Candidates, candidates, feature_frame
from models.recsys.two_stage_ranker import TwoStageConfig
from orchestration.core.feast import BEFORE_EVENT, feature_store, ranking_stats
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import held_out_moments


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


def judge_probe_file(lake: LakeResource, data_version: str) -> tuple[str, Path]:
    """The newest reclake-judge version on this data version and its probe file."""
    judge = registry.latest_judge_probe(registry.connect(lake.paths.mlflow_dir), data_version)
    if judge is None or not judge[1].is_file():
        raise dg.Failure(
            f"no reclake-judge version with its probe file on data version {data_version}: "
            "materialize judge_probe first"
        )
    return judge


def known_stats_ids(lake: LakeResource) -> dict[str, set]:
    """The user and item ids each Feast stats view has rows for."""
    return {
        view: set(
            pd.read_parquet(lake.paths.features(view), columns=[view.split("_")[0] + "_id"])
            .iloc[:, 0]
            .astype(str)
        )
        for view in ("user_stats", "item_stats")
    }


def new_two_stage(config: TwoStageConfig, base, data: SplitData, paths: dict) -> TwoStage:
    """An unfitted TwoStage over `base` with the LLM item and user vectors and the judge's probe."""
    item_vectors, _ = text_vectors(
        data.items, pd.read_parquet(paths["item_text_embeddings"]), "item_id", ["profile_embedding"]
    )
    user_vectors, _ = text_vectors(
        data.users,
        pd.read_parquet(paths["user_profile_embeddings"]),
        "user_id",
        ["profile_embedding"],
    )
    if user_vectors.shape[1] == 0:  # no user profile yet (an LLM budget of 0): zeros, cosine 0
        user_vectors = np.zeros((len(data.users), item_vectors.shape[1]), item_vectors.dtype)
    return TwoStage(
        config,
        base.model,
        None,
        item_vectors,
        user_vectors,
        paths["judge_probe"].read_bytes(),
        data.users,
        data.items,
    )


def candidate_frames(
    lake: LakeResource, model: TwoStage, data: SplitData, base_label: str, log
) -> dict[str, tuple[Candidates, pd.DataFrame]]:
    """Per stage (valid, test): the base model's top-N candidates and their feature frame, with
    Feast stats as of just before each user's held-out event."""
    started, config = time.perf_counter(), model.config
    store, known = feature_store(lake.home_path, lake.engine), known_stats_ids(lake)
    frames = {}
    for stage in ("valid", "test"):
        try:
            cands = candidates(model.base, data, stage, config.n)
        except ValueError as err:
            raise dg.Failure(f"base model {base_label}: {err}. Nothing was registered.") from None
        moments = held_out_moments(lake.warehouse_path, data, stage)
        stats = checked_stats(store, data, cands, moments, known)
        histories = data.histories(cands.users, stage)
        frames[stage] = (
            cands,
            feature_frame(cands, histories, model.sources(stats), config.groups),
        )
        log(
            f"two_stage: {stage} features for {len(cands.users)} users x {config.n} candidates "
            f"of {base_label} ({time.perf_counter() - started:.0f} s)"
        )
    return frames


def model_inputs(
    lake: LakeResource, data_version: str, base_name: str, base_version: str
) -> tuple[dict[str, Path], dict[str, str]]:
    """The files a TwoStage reads beside its base (LLM vectors, the judge's probe) and what
    identifies its inputs: the base version, the feature service, the judge version, file hashes."""
    judge_version, probe_path = judge_probe_file(lake, data_version)
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
    return paths, inputs


def check_same_ids(base, data: SplitData, label: str, data_version: str) -> None:
    """The base model must index the same users and items as the data it re-ranks."""
    if list(base.items) != list(data.items) or list(base.users) != list(data.users):
        raise dg.Failure(
            f"base model {label} was trained on other ids than data version "
            f"{data_version}; re-materialize it"
        )
