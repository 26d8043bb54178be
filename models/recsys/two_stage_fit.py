"""Training a TwoStage end to end once its candidates have features: fit the ranker on the valid
candidates, score valid out of fold over users (the gate's honest score), and test."""

from __future__ import annotations

from dataclasses import dataclass

from models.recsys.data import SplitData
from models.recsys.metrics import Evaluation
from models.recsys.two_stage import TwoStage
from models.recsys.two_stage_features import labels
from models.recsys.two_stage_ranker import cross_fitted, evaluate_reranked, fit_ranker


@dataclass
class FittedTwoStage:
    valid: Evaluation  # cross-fitted over users: the gate's score
    test: Evaluation
    with_label: float  # share of valid users whose valid item is among their candidates


def fit_two_stage(model: TwoStage, frames: dict, data: SplitData) -> FittedTwoStage:
    """Fit `model.ranker` on the valid candidates (frames: stage -> (Candidates, feature frame)),
    score valid out of fold over users and test with the fitted ranker."""
    (valid_cands, valid_frame), (test_cands, test_frame) = frames["valid"], frames["test"]
    config = model.config
    y = labels(valid_cands, data)
    valid, _ = cross_fitted(valid_frame, valid_cands, data, config)  # the gate's score: out of fold
    model.ranker = fit_ranker(valid_frame, y, valid_cands.group_sizes, config).booster_
    test = evaluate_reranked(model.ranker, test_frame, test_cands, data, config)
    with_label = float(y.reshape(len(valid_cands.users), -1).any(1).mean())
    return FittedTwoStage(valid, test, with_label)
