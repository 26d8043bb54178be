"""Retraining on a policy (models/recsys/warm_start.py): the rule that picks a warm start or a full
retrain, new items' rows from their text, and a warm start that really carries the previous weights.
The next-day comparison with a full retrain is a benchmark (bench/retraining.py), not a test."""

import numpy as np
import pandas as pd
import pytest
import torch
from support.data import ML100K_DIR

from models.recsys.data import SplitData, leave_one_out
from models.recsys.metrics import evaluate
from models.recsys.sasrec import SASRec
from models.recsys.warm_start import RetrainPolicy, carry_item_rows, warm_start


@pytest.mark.parametrize(
    "days, new, at_full, on_new_items, kind, says",
    [
        (None, 0, 0, 0, "full", "no earlier version"),
        (7, 10, 1000, 0, "full", "7 days since"),
        (2, 200, 1000, 0, "full", "volume"),
        (2, 50, 1000, 20, "full", "drift"),
        (2, 50, 1000, 5, "warm", "2 day(s) since"),
    ],
)
def test_policy_retrains_in_full_weekly_or_on_volume_or_drift(
    days, new, at_full, on_new_items, kind, says
):
    decided, reason = RetrainPolicy().decide(days, new, at_full, on_new_items)
    assert decided == kind and says in reason


def test_new_items_get_the_mean_row_of_their_nearest_known_items_by_text():
    rows = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])  # pad, a, b, c
    vectors = np.array(
        [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    )  # a, ab, b, c, z (no text)
    carried = carry_item_rows(
        rows, np.array(["a", "b", "c"]), np.array(["a", "ab", "b", "c", "z"]), vectors, 1
    )
    assert torch.equal(carried[1], rows[1]) and torch.equal(carried[3], rows[2])
    assert torch.equal(carried[4], rows[3])
    assert torch.equal(carried[2], rows[1])  # nearest known item by text is a
    assert torch.allclose(carried[5], rows[1:].mean(0))  # no text: the mean known row


@pytest.fixture(scope="module")
def two_nights():
    """The first 200 ML-100K users: a split of everything before the last 5% of their events, and
    one of everything; the users with events in between."""
    raw = pd.read_csv(ML100K_DIR / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    raw = raw[raw["user_id"].astype(int) <= 200]
    raw["event_ts"] = pd.to_datetime(raw["timestamp"].astype(int), unit="s")
    cut = raw["event_ts"].quantile(0.95)
    before = SplitData.from_splits(leave_one_out(raw[raw["event_ts"] < cut]))
    now = SplitData.from_splits(leave_one_out(raw))
    changed = np.flatnonzero(np.isin(now.users, raw.loc[raw["event_ts"] >= cut, "user_id"]))
    return before, now, changed


def test_a_warm_start_carries_the_previous_weights(two_nights):
    torch.set_num_threads(2)
    before, now, changed = two_nights
    config = SASRec.Config(max_len=50, max_epochs=6, patience=6, seed=0)
    previous = SASRec(config)
    previous.fit(before, log=lambda _: None)
    assert len(set(now.items) - set(before.items)) > 0  # some items are new tonight

    policy = RetrainPolicy(warm_epochs=1)
    warm = SASRec(config)
    fit = warm_start(warm, previous, before.items, now, changed, None, policy, log=lambda _: None)
    cold = SASRec(config)  # the same one epoch from random weights
    cold.net = cold.build_net(now.n_items).to(cold.device)
    known = cold.start_known_items(now)
    windows, owners = _same_windows(now, changed, policy)
    optimizer = torch.optim.Adam(cold.net.parameters(), lr=config.lr)
    cold._train_epoch(windows, owners, optimizer, np.random.default_rng(0), known)

    warm_valid = evaluate(warm, now, "valid").metrics["ndcg@10"]
    assert warm_valid == pytest.approx(fit.best_valid_ndcg10)
    assert warm_valid > 1.5 * evaluate(cold, now, "valid").metrics["ndcg@10"]
    kept = np.isin(now.items, before.items)
    rows = warm.net.item_emb.weight[1:][torch.as_tensor(kept)]
    assert rows.shape[0] == len(before.items) and torch.isfinite(warm.net.item_emb.weight).all()


def _same_windows(data, changed, policy):
    from models.recsys.warm_start import changed_windows

    return changed_windows(data, changed, policy.replay_ratio, 50, np.random.default_rng(0))
