"""The two-stage ranker (models/recsys/two_stage.py) on a real ML-100K slice with EASE as its base:
candidates, the honest (cross-fitted) valid score, and clear errors. Its real features and the
ablation are measured by bench/two_stage.py."""

import numpy as np
import pandas as pd
import pytest

from models.recsys.catalog import EASE
from models.recsys.evaluation import evaluate
from models.recsys.two_stage import (FEATURE_GROUPS, Candidates, FeatureSources, TwoStageConfig, candidates,
                                     cross_fitted, evaluate_reranked, feature_frame, fit_ranker, labels,
                                     reranked_topk)


@pytest.fixture(scope="module")
def base(slice_data):
    model = EASE(EASE.Config())
    model.fit(slice_data, log=lambda _: None)
    return model


def test_candidates_are_the_base_models_unseen_top_n_in_its_order(base, slice_data):
    valid = candidates(base, slice_data, "valid", n=50)
    assert valid.items.shape == (len(slice_data.eval_users("valid")), 50)
    assert (np.diff(valid.scores, axis=1) <= 0).all()  # the base model's order
    top20 = evaluate(base, slice_data, "valid").topk
    assert (valid.items[:, :20] == top20).all()  # the same list the protocol evaluates
    test = candidates(base, slice_data, "test", n=50)
    for row, user in enumerate(test.users[:50]):
        assert slice_data.valid[user] not in test.items[row]  # known at test time, so never a candidate
        assert not set(slice_data.train[user]) & set(test.items[row])


def test_reranking_orders_by_score_and_breaks_ties_by_the_base_order():
    cands = Candidates("valid", np.array([0]), np.array([[10, 11, 12, 13] + list(range(20, 36))]), np.zeros((1, 20)))
    scores = np.array([0.1, 0.5, 0.5, 0.9] + [0.0] * 16)
    assert reranked_topk(scores, cands)[0, :4].tolist() == [13, 11, 12, 10]


def _with_group(monkeypatch, name, columns, frame, values):
    monkeypatch.setitem(FEATURE_GROUPS, name, columns)
    for column, value in zip(columns, values):
        frame[column] = value
    return frame


def test_cross_fitting_keeps_a_memorizing_ranker_from_grading_itself(base, slice_data, monkeypatch):
    # fault injection: (user, item) ids as features let the trees memorize who watched what; scored
    # on the users it was fitted on it looks far better than the base model, out of fold it cannot
    valid = candidates(base, slice_data, "valid", n=50)
    frame = feature_frame(valid, slice_data, FeatureSources(), groups=("base",))
    frame = _with_group(monkeypatch, "ids", ["user_id_code", "item_id_code"], frame, [frame["user"], frame["item"]])
    config = TwoStageConfig(groups=("base", "ids"), n_estimators=300, num_leaves=63, min_child_samples=1)
    y = labels(valid, slice_data)
    in_sample = evaluate_reranked(fit_ranker(frame, y, valid.group_sizes, config), frame, valid, slice_data, config)
    out_of_fold, _ = cross_fitted(frame, valid, slice_data, config)
    base_ndcg = evaluate(base, slice_data, "valid").metrics["ndcg@10"]
    assert in_sample.metrics["ndcg@10"] > 2 * base_ndcg
    assert out_of_fold.metrics["ndcg@10"] < base_ndcg + 0.05


def test_a_feature_that_carries_signal_is_learned_out_of_fold(base, slice_data, monkeypatch):
    # fault injection: a planted noisy copy of the label; the ranker must find it on users it never saw
    valid = candidates(base, slice_data, "valid", n=50)
    frame = feature_frame(valid, slice_data, FeatureSources(), groups=("base",))
    y = labels(valid, slice_data)
    noise = np.random.default_rng(0).normal(size=len(y))
    frame = _with_group(monkeypatch, "planted", ["planted"], frame, [y + noise])
    config = TwoStageConfig(groups=("base", "planted"))
    out_of_fold, scores = cross_fitted(frame, valid, slice_data, config)
    assert scores.shape == (len(y),)
    assert out_of_fold.metrics["ndcg@10"] > 1.3 * evaluate(base, slice_data, "valid").metrics["ndcg@10"]


def test_missing_or_misaligned_sources_fail_naming_the_group(base, slice_data):
    valid = candidates(base, slice_data, "valid", n=50)
    with pytest.raises(ValueError, match="feature group 'judge' needs a tuned judge"):
        feature_frame(valid, slice_data, FeatureSources(), groups=("base", "judge"))
    with pytest.raises(ValueError, match=f"expected {valid.items.size} rows aligned with the candidates, got 3"):
        feature_frame(valid, slice_data, FeatureSources(stats=pd.DataFrame({"x": [1, 2, 3]})), groups=("stats",))
    with pytest.raises(ValueError, match=r"user \S+ has \d+ unseen items at valid, fewer than the n=5000"):
        candidates(base, slice_data, "valid", n=5000)


def test_with_the_base_models_features_alone_the_ranker_keeps_its_order(base, slice_data):
    # the monotone prior: with nothing else to go on, re-ranking must not make the base model worse
    valid = candidates(base, slice_data, "valid", n=50)
    frame = feature_frame(valid, slice_data, FeatureSources(), groups=("base",))
    out_of_fold, _ = cross_fitted(frame, valid, slice_data, TwoStageConfig(groups=("base",)))
    assert out_of_fold.metrics == evaluate(base, slice_data, "valid").metrics
