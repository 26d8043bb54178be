"""Recommenders and the evaluation protocol, on hand examples and a small real slice of ML-100K."""

import numpy as np
import pandas as pd
import pytest
import torch
from support.data import ML100K_DIR

from models.recsys.base import save_recommender
from models.recsys.catalog import EASE, MODELS, ContentRetriever, LLMSASRec, SASRec
from models.recsys.data import SplitData
from models.recsys.metrics import evaluate, metrics_from_topk
from models.recsys.serving import SavedRecommender


def test_metrics_match_a_hand_computed_example():
    topk = np.array(
        [
            [
                7,
                1,
                2,
                3,
                4,
                5,
                6,
                8,
                9,
                10,
                11,
                12,
                13,
                14,
                15,
                16,
                17,
                18,
                19,
                20,
            ],  # target 7 at rank 1
            [1, 2, 7, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],  # rank 3
            [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 7, 13, 14, 15, 16, 17, 18, 19, 20],  # rank 12
            [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        ]
    )  # missing
    got = metrics_from_topk(topk, np.array([7, 7, 7, 7]))
    # by hand: NDCG = 1/log2(rank+1): 1, 0.5, 1/log2(13) = 0.270238...; MRR@10: 1, 1/3
    assert got["ndcg@10"] == pytest.approx((1 + 0.5) / 4)
    assert got["ndcg@20"] == pytest.approx((1 + 0.5 + 0.2702381544) / 4)
    assert got["recall@10"] == pytest.approx(2 / 4)
    assert got["recall@20"] == pytest.approx(3 / 4)
    assert got["mrr@10"] == pytest.approx((1 + 1 / 3) / 4)


class FixedScores:
    """A scoring stub with fixed per-item scores (the item index itself): tests the masking only."""

    def __init__(self, n_items):
        self.scores = torch.arange(n_items, dtype=torch.float32)

    def score_all(self, users, histories):
        return self.scores.expand(len(users), -1)


def test_evaluation_masks_train_items_and_the_valid_item_at_test():
    frame = pd.DataFrame(
        {
            "user_id": ["u"] * 5,
            "item_id": [
                "a",
                "b",
                "e",
                "d",
                "c",
            ],  # indices a0 b1 c2 d3 e4; time order a, b, e, d, c
            "event_ts": pd.to_datetime([1, 2, 3, 4, 5], unit="s"),
            "split": ["train", "train", "train", "valid", "test"],
        }
    )
    data = SplitData.from_splits(frame)
    model = FixedScores(data.n_items)  # prefers e > d > c > b > a
    valid = evaluate(model, data, "valid")
    assert list(valid.topk[0][:2]) == [3, 2]  # e (train) masked; d (valid target) first
    assert valid.metrics["ndcg@10"] == 1.0
    test = evaluate(model, data, "test")
    assert list(test.topk[0][:1]) == [2]  # e (train) and d (valid) masked: c is first
    assert test.metrics["mrr@10"] == 1.0


def test_split_data_keeps_time_order_with_ties_broken_by_source_row():
    frame = pd.DataFrame(
        {
            "user_id": ["u"] * 4,
            "item_id": ["x", "y", "z", "w"],
            "event_ts": pd.to_datetime([5, 5, 5, 9], unit="s"),
            "source_file": ["f"] * 4,
            "source_row": [3, 1, 2, 4],
            "split": ["train", "train", "train", "test"],
        }
    )
    data = SplitData.from_splits(frame)
    assert [data.items[i] for i in data.train[0]] == ["y", "z", "x"]


def _item_vectors(data: SplitData) -> np.ndarray:
    from models.text.embeddings import encode_texts

    titles = pd.read_csv(ML100K_DIR / "ml-100k.item", sep="\t", dtype=str).set_index(
        "item_id:token"
    )
    texts = [titles["movie_title:token_seq"].get(i, f"item {i}") for i in data.items]
    return encode_texts(texts)


def _build(name, data):
    if name == "llm_sasrec":
        return LLMSASRec(
            LLMSASRec.Config(max_len=50, max_epochs=3, item_text="title"),
            item_text=_item_vectors(data),
        )
    if name == "sasrec":
        return SASRec(SASRec.Config(max_len=50, max_epochs=3))
    if name == "content_retriever":
        return ContentRetriever(ContentRetriever.Config(), item_text=_item_vectors(data))
    return MODELS[name](MODELS[name].Config())


@pytest.mark.parametrize(
    "name", ["popularity", "content_retriever", "ease", "sasrec", "llm_sasrec"]
)
def test_each_model_trains_scores_and_reloads_identically(name, slice_data, tmp_path):
    torch.set_num_threads(2)
    model = _build(name, slice_data)
    fit = model.fit(slice_data, log=lambda _: None)
    assert fit.epochs and fit.best_valid_ndcg10 > 0
    users = slice_data.eval_users("test")[:16]
    scores = model.score_all(users, slice_data.histories(users, "test"))
    assert scores.shape == (16, slice_data.n_items) and torch.isfinite(scores).all()

    saved = SavedRecommender.load(save_recommender(model, slice_data, tmp_path / "m.pt"))
    again = saved.model.score_all(users, slice_data.histories(users, "test"))
    assert torch.allclose(scores, again, atol=1e-5)
    recs = saved.recommend([slice_data.users[u] for u in users[:3]] + ["no-such-user"], k=5)
    assert len(recs) == 15 and list(recs["rank"][:5]) == [1, 2, 3, 4, 5]
    seen = {
        (slice_data.users[u], slice_data.items[i]) for u in users[:3] for i in saved.histories[u]
    }
    assert not seen & set(zip(recs["user_id"], recs["item_id"]))  # nothing the user already had


def test_sasrec_is_deterministic_given_a_seed(slice_data):
    torch.set_num_threads(2)
    runs = [
        SASRec(SASRec.Config(max_len=20, max_epochs=2, seed=7)).fit(slice_data, log=lambda _: None)
        for _ in range(2)
    ]
    assert [e["train_loss"] for e in runs[0].epochs] == [e["train_loss"] for e in runs[1].epochs]
    other = SASRec(SASRec.Config(max_len=20, max_epochs=2, seed=8)).fit(
        slice_data, log=lambda _: None
    )
    assert [e["train_loss"] for e in other.epochs] != [e["train_loss"] for e in runs[0].epochs]


def test_ease_grid_is_recorded_and_picks_the_best_valid_lambda(slice_data):
    model = EASE(EASE.Config(lambdas=(5.0, 50.0, 500.0)))
    fit = model.fit(slice_data, log=lambda _: None)
    assert [t["lambda"] for t in fit.trials] == [5.0, 50.0, 500.0]
    best = max(fit.trials, key=lambda t: t["valid_ndcg@10"])
    assert model.reg == best["lambda"] and fit.best_valid_ndcg10 == best["valid_ndcg@10"]


def test_sasrec_on_two_items_fails_with_a_clear_message():
    frame = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "v", "v", "v"],
            "item_id": ["a", "b", "a", "b", "a", "b"],
            "event_ts": pd.to_datetime([1, 2, 3, 1, 2, 3], unit="s"),
            "split": ["train", "valid", "test"] * 2,
        }
    )
    with pytest.raises(ValueError, match="sasrec needs at least 3 items .* this split has 2 items"):
        SASRec(SASRec.Config(max_epochs=1)).fit(SplitData.from_splits(frame))


def test_llm_sasrec_rejects_text_vectors_for_other_items(slice_data):
    model = LLMSASRec(LLMSASRec.Config(max_epochs=1), item_text=np.zeros((5, 8), np.float32))
    with pytest.raises(ValueError, match="item text vectors: 5 rows for"):
        model.fit(slice_data, log=lambda _: None)
