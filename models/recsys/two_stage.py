"""Two-stage ranking: a base recommender's top-N candidates re-scored by LightGBM's LambdaMART over
point-in-time stats (Feast's `ranking_v1`) and LLM-derived features.

    valid = candidates(base, data, "valid", n=50)              # the base model's top-N, train histories
    X = feature_frame(valid, data, sources)                     # one row per (user, candidate)
    valid_eval, _ = cross_fitted(X, valid, data, config)        # out-of-fold: each user scored by a
                                                                #   ranker that never saw their label
    ranker = fit_ranker(X, labels(valid, data), valid.group_sizes, config)   # all users, for test
    test = candidates(base, data, "test", n=50)                # train+valid histories
    test_eval = evaluate_reranked(ranker, feature_frame(test, data, sources), test, data, config)

Labels are the held-out VALID item, which the base model did not train on; test is only reported.
Re-ranking reorders the top-N and the protocol keeps the top 20 of them, so the metrics are the
full-ranking ones of models/recsys/evaluation.py. Feature groups (FEATURE_GROUPS) can be left out
one at a time: that is the ablation in bench/two_stage.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from models.recsys.data import SplitData, mean_vectors
from models.recsys.evaluation import TOP_K, Evaluation, metrics_from_topk, top_unseen

STATS = ("n_interactions", "mean_rating", "rating_std", "days_since_first", "days_since_previous")
FEATURE_GROUPS = {
    "base": ["base_score", "base_rank"],
    "stats": [f"{side}_stats__{name}" for side in ("user", "item") for name in STATS],
    "text": ["history_text_sim", "recent_text_sim"],  # LLM item profiles (their MiniLM vectors)
    "user_profile": ["user_profile_sim"],  # the LLM user profile's vector vs the item's
    "judge": ["judge_score"],  # the tuned judge's raw P(relevant) (trained on train rows only)
}
LLM_GROUPS = ("text", "user_profile", "judge")
MONOTONE = {"base_score": 1, "base_rank": -1}


@dataclass
class TwoStageConfig:
    groups: tuple[str, ...] = tuple(FEATURE_GROUPS)
    folds: int = 5  # cross-fitting over users for the out-of-sample valid score
    # small trees, few rounds: one label per user (~45% of users have it among EASE's top 50 on
    # ML-100K) is little to learn from; chosen on cross-fitted valid (docs/recommenders.md)
    n_estimators: int = 50
    learning_rate: float = 0.05
    num_leaves: int = 4
    min_child_samples: int = 200
    seed: int = 0
    threads: int = 2


@dataclass
class Candidates:
    stage: str
    users: np.ndarray  # user indices, one per row
    items: np.ndarray  # [users, N] item indices, the base model's order
    scores: np.ndarray  # [users, N] the base model's scores

    @property
    def group_sizes(self) -> np.ndarray:
        return np.full(len(self.users), self.items.shape[1])


@dataclass
class FeatureSources:
    """What the features are computed from; a group whose source is missing is an error (leave the
    group out of the config instead), never a column of NaNs."""

    stats: pd.DataFrame | None = None  # Feast rows aligned with the candidate rows: user_stats__*, item_stats__*
    item_vectors: np.ndarray | None = None  # [n_items, d] unit vectors of the LLM item profiles
    user_vectors: np.ndarray | None = None  # [n_users, d] unit vectors of the LLM user profiles
    judge: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None  # (history, items) -> scores


def candidates(model, data: SplitData, stage: str, n: int, batch_size: int = 256) -> Candidates:
    """The base model's top-n unseen items for every user with a held-out item at `stage`."""
    users, items, scores, unseen = top_unseen(model, data, stage, k=n, batch_size=batch_size)
    if (unseen < n).any():  # also when the catalogue itself has fewer than n items
        short = int(np.argmin(unseen))
        raise ValueError(f"user {data.users[users[short]]} has {unseen[short]} unseen items at {stage}, "
                         f"fewer than the n={n} candidates the second stage re-ranks")
    return Candidates(stage, users, items, scores)


def labels(cands: Candidates, data: SplitData) -> np.ndarray:
    """1 where the candidate is the user's held-out item at the candidates' stage."""
    return (cands.items == data.target(cands.stage)[cands.users][:, None]).astype(np.int32).ravel()


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norm > 0, (a * b).sum(1) / np.where(norm > 0, norm, 1.0), 0.0)


def feature_frame(cands: Candidates, data: SplitData, sources: FeatureSources,
                  groups: tuple[str, ...] = tuple(FEATURE_GROUPS), recent: int = 5) -> pd.DataFrame:
    """One row per (user, candidate), users in candidate order, candidates in the base model's order;
    `recent_text_sim` compares the item with the last `recent` items of the history."""
    n_users, n = cands.items.shape
    frame = pd.DataFrame({"user": np.repeat(cands.users, n), "item": cands.items.ravel()})
    if "base" in groups:
        frame["base_score"] = cands.scores.ravel()
        frame["base_rank"] = np.tile(np.arange(n), n_users)
    if "stats" in groups:
        if sources.stats is None or len(sources.stats) != len(frame):
            raise ValueError(f"stats features: expected {len(frame)} rows aligned with the candidates, got "
                             f"{None if sources.stats is None else len(sources.stats)}")
        for column in FEATURE_GROUPS["stats"]:
            frame[column] = sources.stats[column].to_numpy(dtype=float)
    histories = data.histories(cands.users, cands.stage)
    if "text" in groups:
        vectors = _require(sources.item_vectors, "text", "item profile vectors")
        item = vectors[frame["item"].to_numpy()]
        frame["history_text_sim"] = _cosine_rows(np.repeat(mean_vectors(vectors, histories), n, axis=0), item)
        recent_items = [h[-recent:] for h in histories]
        frame["recent_text_sim"] = _cosine_rows(np.repeat(mean_vectors(vectors, recent_items), n, axis=0), item)
    if "user_profile" in groups:
        users = _require(sources.user_vectors, "user_profile", "user profile vectors")
        items = _require(sources.item_vectors, "user_profile", "item profile vectors")
        frame["user_profile_sim"] = _cosine_rows(users[frame["user"].to_numpy()], items[frame["item"].to_numpy()])
    if "judge" in groups:
        judge = _require(sources.judge, "judge", "a tuned judge")
        frame["judge_score"] = np.concatenate([judge(h, row) for h, row in zip(histories, cands.items)])
    return frame


def _require(value, group: str, what: str):
    if value is None:
        raise ValueError(f"feature group {group!r} needs {what}; leave the group out of TwoStageConfig.groups instead")
    return value


def feature_columns(groups: tuple[str, ...]) -> list[str]:
    return [column for group in groups for column in FEATURE_GROUPS[group]]


def fit_ranker(frame: pd.DataFrame, y: np.ndarray, group_sizes: np.ndarray, config: TwoStageConfig):
    """LambdaMART on the groups that hold their positive (a group without one has no gradient)."""
    import lightgbm

    has_positive = np.add.reduceat(y, np.concatenate([[0], np.cumsum(group_sizes)[:-1]])) > 0
    rows = np.repeat(has_positive, group_sizes)
    if not has_positive.any():
        raise ValueError("no user's held-out item is among the base model's candidates: nothing to learn from")
    columns = feature_columns(config.groups)
    # the base model's order is a prior the few labels must not bend: higher score, higher rank
    monotone = [MONOTONE.get(column, 0) for column in columns]
    ranker = lightgbm.LGBMRanker(objective="lambdarank", n_estimators=config.n_estimators, monotone_constraints=monotone,
                                 learning_rate=config.learning_rate, num_leaves=config.num_leaves,
                                 min_child_samples=config.min_child_samples, random_state=config.seed,
                                 n_jobs=config.threads, deterministic=True, force_row_wise=True, verbose=-1)
    ranker.fit(frame.loc[rows, columns], y[rows], group=group_sizes[has_positive])
    return ranker


def reranked_topk(scores: np.ndarray, cands: Candidates) -> np.ndarray:
    """The candidates ordered by the ranker's score (ties: the base model's order), top 20 kept."""
    n_users, n = cands.items.shape
    by_user = scores.reshape(n_users, n)
    order = np.lexsort((np.tile(np.arange(n), (n_users, 1)), -by_user), axis=1)
    return np.take_along_axis(cands.items, order, axis=1)[:, :TOP_K]


def evaluate_reranked(ranker, frame: pd.DataFrame, cands: Candidates, data: SplitData,
                      config: TwoStageConfig) -> Evaluation:
    topk = reranked_topk(ranker.predict(frame[feature_columns(config.groups)]), cands)
    return Evaluation(cands.stage, metrics_from_topk(topk, data.target(cands.stage)[cands.users]), cands.users, topk)


def cross_fitted(frame: pd.DataFrame, cands: Candidates, data: SplitData,
                 config: TwoStageConfig) -> tuple[Evaluation, np.ndarray]:
    """Out-of-fold scores: users in `config.folds` seeded folds, each scored by a ranker fitted on the
    others; the metrics a gate may compare with other models' valid figures. Also the scores."""
    y = labels(cands, data)
    n_users, n = cands.items.shape
    fold = np.random.default_rng(config.seed).permutation(n_users) % config.folds
    scores = np.zeros(n_users * n)
    for k in range(config.folds):
        inside = np.repeat(fold != k, n)
        ranker = fit_ranker(frame[inside].reset_index(drop=True), y[inside], cands.group_sizes[fold != k], config)
        scores[~inside] = ranker.predict(frame.loc[~inside, feature_columns(config.groups)])
    topk = reranked_topk(scores, cands)
    return Evaluation(cands.stage, metrics_from_topk(topk, data.target(cands.stage)[cands.users]), cands.users, topk), scores
