"""The two-stage ranker (models/recsys/two_stage.py) on a real ML-100K slice with EASE as its base:
candidates, the honest (cross-fitted) valid score, and clear errors. Its real features and the
ablation are measured by bench/two_stage.py."""

import numpy as np
import pandas as pd
import pytest
import torch

from models.recsys.catalog import EASE
from models.recsys.metrics import evaluate
from models.recsys.two_stage_features import (
    FEATURE_GROUPS,
    Candidates,
    FeatureSources,
    candidates,
    feature_frame,
    labels,
)
from models.recsys.two_stage_ranker import (
    TwoStageConfig,
    cross_fitted,
    evaluate_reranked,
    fit_ranker,
    reranked_topk,
)


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
        assert (
            slice_data.valid[user] not in test.items[row]
        )  # known at test time, so never a candidate
        assert not set(slice_data.train[user]) & set(test.items[row])


def test_reranking_orders_by_score_and_breaks_ties_by_the_base_order():
    cands = Candidates(
        "valid",
        np.array([0]),
        np.array([[10, 11, 12, 13] + list(range(20, 36))]),
        np.zeros((1, 20)),
    )
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
    frame = feature_frame(
        valid, slice_data.histories(valid.users, "valid"), FeatureSources(), groups=("base",)
    )
    frame = _with_group(
        monkeypatch, "ids", ["user_id_code", "item_id_code"], frame, [frame["user"], frame["item"]]
    )
    config = TwoStageConfig(
        groups=("base", "ids"), n_estimators=300, num_leaves=63, min_child_samples=1
    )
    y = labels(valid, slice_data)
    in_sample = evaluate_reranked(
        fit_ranker(frame, y, valid.group_sizes, config), frame, valid, slice_data, config
    )
    out_of_fold, _ = cross_fitted(frame, valid, slice_data, config)
    base_ndcg = evaluate(base, slice_data, "valid").metrics["ndcg@10"]
    assert in_sample.metrics["ndcg@10"] > 2 * base_ndcg
    assert out_of_fold.metrics["ndcg@10"] < base_ndcg + 0.05


def test_a_feature_that_carries_signal_is_learned_out_of_fold(base, slice_data, monkeypatch):
    # fault injection: a planted noisy copy of the label; the ranker must find it on users it never saw
    valid = candidates(base, slice_data, "valid", n=50)
    frame = feature_frame(
        valid, slice_data.histories(valid.users, "valid"), FeatureSources(), groups=("base",)
    )
    y = labels(valid, slice_data)
    noise = np.random.default_rng(0).normal(size=len(y))
    frame = _with_group(monkeypatch, "planted", ["planted"], frame, [y + noise])
    config = TwoStageConfig(groups=("base", "planted"))
    out_of_fold, scores = cross_fitted(frame, valid, slice_data, config)
    assert scores.shape == (len(y),)
    assert (
        out_of_fold.metrics["ndcg@10"]
        > 1.3 * evaluate(base, slice_data, "valid").metrics["ndcg@10"]
    )


def test_missing_or_misaligned_sources_fail_naming_the_group(base, slice_data):
    valid = candidates(base, slice_data, "valid", n=50)
    with pytest.raises(ValueError, match="feature group 'judge' needs a tuned judge"):
        feature_frame(
            valid,
            slice_data.histories(valid.users, "valid"),
            FeatureSources(),
            groups=("base", "judge"),
        )
    with pytest.raises(
        ValueError, match=f"expected {valid.items.size} rows aligned with the candidates, got 3"
    ):
        feature_frame(
            valid,
            slice_data.histories(valid.users, "valid"),
            FeatureSources(stats=pd.DataFrame({"x": [1, 2, 3]})),
            groups=("stats",),
        )
    with pytest.raises(
        ValueError, match=r"user \S+ has \d+ unseen items at valid, fewer than the n=5000"
    ):
        candidates(base, slice_data, "valid", n=5000)


def test_with_the_base_models_features_alone_the_ranker_keeps_its_order(base, slice_data):
    # the monotone prior: with nothing else to go on, re-ranking must not make the base model worse
    valid = candidates(base, slice_data, "valid", n=50)
    frame = feature_frame(
        valid, slice_data.histories(valid.users, "valid"), FeatureSources(), groups=("base",)
    )
    out_of_fold, _ = cross_fitted(frame, valid, slice_data, TwoStageConfig(groups=("base",)))
    assert out_of_fold.metrics == evaluate(base, slice_data, "valid").metrics


@pytest.fixture(scope="module")
def served(base, slice_data, tmp_path_factory):
    """A TwoStage over EASE with every feature group, its sources synthetic but deterministic: item
    and user vectors and a judge probe with random weights, stats looked up from the ids."""
    from models.evaluation.judge_probe import Calibration, ProbeConfig, dump
    from models.recsys.pair_probe import Probe
    from models.recsys.two_stage import TwoStage

    rng = np.random.default_rng(0)
    item_vectors = rng.normal(size=(slice_data.n_items, 8)).astype(np.float32)
    user_vectors = rng.normal(size=(slice_data.n_users, 8)).astype(np.float32)
    probe_vectors = rng.normal(size=(slice_data.n_items, 4)).astype(np.float32)
    probe = Probe(
        np.zeros(12, np.float32),
        np.ones(12, np.float32),
        rng.normal(size=12).astype(np.float32),
        0.1,
    )
    judge_npz = dump(
        probe,
        Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0])),
        probe_vectors,
        slice_data.items,
        ProbeConfig(),
    )

    def stats(user_ids, item_ids):  # a function of the ids alone, so both paths see the same values
        codes = (
            pd.Series(user_ids).str.len().to_numpy() * 7
            + pd.Series(item_ids).astype(str).map(hash).to_numpy() % 13
        )
        return pd.DataFrame(
            {c: codes * (k + 1) % 17 for k, c in enumerate(FEATURE_GROUPS["stats"])}
        )

    config = TwoStageConfig(n=30)
    model = TwoStage(
        config,
        base,
        None,
        item_vectors,
        user_vectors,
        judge_npz,
        slice_data.users,
        slice_data.items,
    )
    frames = {}
    for stage in ("valid", "test"):
        cands = candidates(base, slice_data, stage, config.n)
        users = slice_data.users[np.repeat(cands.users, config.n)]
        frame = feature_frame(
            cands,
            slice_data.histories(cands.users, stage),
            model.sources(stats(users, slice_data.items[cands.items.ravel()])),
        )
        frames[stage] = cands, frame
    cands, frame = frames["valid"]
    model.ranker = fit_ranker(frame, labels(cands, slice_data), cands.group_sizes, config).booster_
    model.stats = stats
    return model, frames, stats


def test_the_served_model_ranks_as_the_reranking_it_was_evaluated_with(served, slice_data):
    # the registered model (score_all, ranked by the protocol's evaluation) and the test figures
    # (evaluate_reranked over the feature frame) must be the same lists
    model, frames, _ = served
    cands, frame = frames["test"]
    reranked = evaluate_reranked(model.ranker, frame, cands, slice_data, model.config)
    as_a_recommender = evaluate(model, slice_data, "test")
    assert (as_a_recommender.topk == reranked.topk).all()
    assert as_a_recommender.metrics == reranked.metrics
    assert not (
        reranked.topk == evaluate(model.base, slice_data, "test").topk
    ).all()  # it did re-rank


def test_the_saved_two_stage_model_loads_back_and_scores_the_same(served, slice_data, tmp_path):
    from models.recsys.base import save_recommender
    from models.recsys.serving import SavedRecommender

    model, _, stats = served
    path = save_recommender(model, slice_data, tmp_path / "two_stage.pt")
    loaded = SavedRecommender.load(path)
    with pytest.raises(ValueError, match="two_stage reads Feast stats"):
        loaded.recommend(
            slice_data.users[:3], k=5
        )  # nothing bound: a clear error, not NaN features
    loaded.model.stats = stats
    users = np.arange(40)
    histories = slice_data.histories(users, "test")
    assert torch.equal(loaded.model.score_all(users, histories), model.score_all(users, histories))
    lists = loaded.recommend(slice_data.users[:3], k=5)
    assert len(lists) == 15 and lists.groupby("user_id")["score"].is_monotonic_decreasing.all()


def test_the_judge_feature_scores_a_batch_as_the_probe_scores_one_user(served, slice_data):
    import io

    from models.recsys.pair_probe import Probe

    model, _, _ = served
    probe, vectors, _ = Probe.read(io.BytesIO(model.judge_npz))
    histories, items = slice_data.histories(np.arange(5), "valid"), np.arange(50).reshape(5, 10)
    batch = probe.candidate_scores(vectors, histories, items)
    one_by_one = np.stack([probe.raw_scores(vectors, h, row) for h, row in zip(histories, items)])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-4, atol=1e-6)


def test_bad_inputs_fail_naming_the_version_or_entity_before_anything_is_registered(
    base, slice_data, tmp_path
):
    import dagster as dg

    from models import registry
    from models.recsys.metrics import evaluate as evaluate_model
    from orchestration.core.resources import LakeResource
    from orchestration.defs.training.two_stage_inputs import checked_stats, pick_base

    # a base version whose eval_topk is gone (registered and complete, then its lake files lost)
    lake = LakeResource(home=str(tmp_path / "home"))
    client = registry.connect(lake.paths.mlflow_dir)
    fit = base.fit(slice_data, log=lambda _: None)
    version = registry.log_and_register(
        client,
        base,
        slice_data,
        fit,
        evaluate_model(base, slice_data, "valid"),
        evaluate_model(base, slice_data, "test"),
        workdir=tmp_path / "work",
        plots=[],
        run_tags={},
        version_tags={"data_version": "dv1"},
    ).version
    registry.mark_complete(client, version)
    with pytest.raises(
        dg.Failure, match=f"base model ease v{version} has no eval_topk .*Nothing was registered"
    ):
        pick_base(lake, "dv1", None)
    with pytest.raises(dg.Failure, match="no complete version of sasrec on data version dv1"):
        pick_base(lake, "dv1", "sasrec")

    # Feast has no stats row for a candidate user that has train interactions: named, before any lookup
    cands = candidates(base, slice_data, "valid", n=50)
    users, items = set(slice_data.users.astype(str)), set(slice_data.items.astype(str))
    lost = str(slice_data.users[cands.users[3]])
    with pytest.raises(
        dg.Failure,
        match=f"Feast view user_stats has no row for user {lost} .*user_stats__n_interactions",
    ):
        checked_stats(
            None,
            slice_data,
            cands,
            pd.Series(dtype="datetime64[ns]"),
            {"user_stats": users - {lost}, "item_stats": items},
        )
