"""The two-stage ranker itself (two_stage.py serves it): LightGBM's LambdaMART over the candidates'
features (two_stage_features.py), its settings (TwoStageConfig), the honest valid score
(cross-fitted over users) and the re-ranked top-k the protocol evaluates.

    valid_eval, _ = cross_fitted(X, valid, data, config)        # out-of-fold: each user scored by a
                                                                #   ranker that never saw their label
    ranker = fit_ranker(X, labels(valid, data), valid.group_sizes, config)   # all users, for test
    test_eval = evaluate_reranked(ranker, X_test, test, data, config)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.recsys.data import SplitData
from models.recsys.metrics import TOP_K, Evaluation, metrics_from_topk
from models.recsys.two_stage_features import FEATURE_GROUPS, Candidates, feature_columns, labels

MONOTONE = {"base_score": 1, "base_rank": -1}


@dataclass
class TwoStageConfig:
    groups: tuple[str, ...] = tuple(FEATURE_GROUPS)
    n: int = 50  # candidates per user from the base model
    feature_service: str = "ranking_v1"  # the Feast service the stats group comes from
    folds: int = 5  # cross-fitting over users for the out-of-sample valid score
    # small trees, few rounds: one label per user (~45% of users have it among EASE's top 50 on
    # ML-100K) is little to learn from; chosen on cross-fitted valid (docs/recommenders.md)
    n_estimators: int = 50
    learning_rate: float = 0.05
    num_leaves: int = 4
    min_child_samples: int = 200
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # the base model's


def fit_ranker(frame: pd.DataFrame, y: np.ndarray, group_sizes: np.ndarray, config: TwoStageConfig):
    """LambdaMART on the groups that hold their positive (a group without one has no gradient)."""
    import lightgbm

    has_positive = np.add.reduceat(y, np.concatenate([[0], np.cumsum(group_sizes)[:-1]])) > 0
    rows = np.repeat(has_positive, group_sizes)
    if not has_positive.any():
        raise ValueError(
            "no user's held-out item is among the base model's candidates: nothing to learn from"
        )
    columns = feature_columns(config.groups)
    # the base model's order is a prior the few labels must not bend: higher score, higher rank
    monotone = [MONOTONE.get(column, 0) for column in columns]
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=config.n_estimators,
        monotone_constraints=monotone,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        random_state=config.seed,
        n_jobs=config.threads,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    ranker.fit(frame.loc[rows, columns], y[rows], group=group_sizes[has_positive])
    return ranker


def reranked_order(scores: np.ndarray, cands: Candidates) -> np.ndarray:
    """[users, N] positions of each user's candidates by the ranker's score (ties: the base model's
    order; small trees give many exact ties)."""
    n_users, n = cands.items.shape
    return np.lexsort((np.tile(np.arange(n), (n_users, 1)), -scores.reshape(n_users, n)), axis=1)


def reranked_topk(scores: np.ndarray, cands: Candidates) -> np.ndarray:
    """The candidates ordered by the ranker's score (ties: the base model's order), top 20 kept."""
    return np.take_along_axis(cands.items, reranked_order(scores, cands), axis=1)[:, :TOP_K]


def evaluate_reranked(
    ranker, frame: pd.DataFrame, cands: Candidates, data: SplitData, config: TwoStageConfig
) -> Evaluation:
    topk = reranked_topk(ranker.predict(frame[feature_columns(config.groups)]), cands)
    return Evaluation(
        cands.stage,
        metrics_from_topk(topk, data.target(cands.stage)[cands.users]),
        cands.users,
        topk,
    )


def cross_fitted(
    frame: pd.DataFrame, cands: Candidates, data: SplitData, config: TwoStageConfig
) -> tuple[Evaluation, np.ndarray]:
    """Out-of-fold scores: users in `config.folds` seeded folds, each scored by a ranker fitted on the
    others; the metrics a gate may compare with other models' valid figures. Also the scores."""
    y = labels(cands, data)
    n_users, n = cands.items.shape
    fold = np.random.default_rng(config.seed).permutation(n_users) % config.folds
    scores = np.zeros(n_users * n)
    for k in range(config.folds):
        inside = np.repeat(fold != k, n)
        ranker = fit_ranker(
            frame[inside].reset_index(drop=True), y[inside], cands.group_sizes[fold != k], config
        )
        scores[~inside] = ranker.predict(frame.loc[~inside, feature_columns(config.groups)])
    topk = reranked_topk(scores, cands)
    return Evaluation(
        cands.stage,
        metrics_from_topk(topk, data.target(cands.stage)[cands.users]),
        cands.users,
        topk,
    ), scores
