"""Evaluating the evaluators (#35): negatives that popularity cannot tell apart, the evaluator split
that holds each user's last events out of the judge's and simulator's fitting, systems of known
order (ladders), and the checks that read them."""

import numpy as np
import pandas as pd
import pytest

from models.evaluation.evaluator_split import (
    LADDER_STEPS,
    check_evaluator,
    evaluator_split,
    ladders,
    truth_hits,
)
from models.evaluation.judge_probe import ProbeConfig, train_examples
from models.evaluation.negatives import (
    NegativeSampler,
    auc_by_negatives,
    in_list,
    popularity_deciles,
    popularity_matched,
)
from models.recsys.data import SplitData


def long_split(n_users=40, n_items=80, length=30, seed=0) -> SplitData:
    """Users with `length` train events (then valid, test) over a catalogue whose low ids are
    picked more often (a popularity slope)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1)
    rows = []
    for u in range(n_users):
        picks = rng.choice(n_items, size=length + 2, replace=False, p=weights / weights.sum())
        for t, item in enumerate(picks):
            split = "train" if t < length else ("valid" if t == length else "test")
            rows.append(
                {"user_id": f"u{u:02d}", "item_id": f"i{item:02d}", "event_ts": t, "split": split}
            )
    return SplitData.from_splits(pd.DataFrame(rows))


def test_popularity_deciles_split_the_catalogue_in_tenths_by_count():
    counts = np.array([5, 0, 9, 1, 7, 3, 3, 8, 2, 6] * 3)
    deciles = popularity_deciles(counts)
    assert np.bincount(deciles).tolist() == [3] * 10
    order = np.argsort(counts, kind="stable")
    assert (np.diff(deciles[order]) >= 0).all(), "a more rated item is never in a lower decile"


def test_popularity_matched_negatives_share_the_positive_decile_and_are_unseen():
    data = long_split()
    counts = data.train_counts()
    deciles = popularity_deciles(counts)
    rng = np.random.default_rng(0)
    for u in range(5):
        seen, positive = data.train[u], int(data.valid[u])
        negatives = popularity_matched(rng, deciles, positive, seen, 5)
        assert len(negatives) and (deciles[negatives] == deciles[positive]).all()
        assert not set(negatives) & {*seen.tolist(), positive}


def test_in_list_negatives_are_what_lists_showed_minus_the_pick_and_the_history():
    assert in_list([["a", "b", "c"], ["c", "d", "e"]], "b", ["e"]) == ["a", "c", "d"]


def test_the_probe_can_learn_against_popularity_matched_and_popular_negatives():
    data = long_split()
    deciles = popularity_deciles(data.train_counts())
    config = ProbeConfig(
        targets_per_user=3, negatives_per_target=4, negative_kinds=("random", "popularity_matched")
    )
    histories, items, labels = train_examples(data, config)
    positives = items[labels == 1]
    # each positive is followed by its negatives: 2 random, then up to 2 of its decile (fewer
    # when the user rated most of it)
    groups = np.split(items, np.flatnonzero(labels == 1)[1:])
    assert len(positives) == data.n_users * 3
    assert all((deciles[g[3:]] == deciles[g[0]]).all() for g in groups)
    assert np.mean([len(g) == 5 for g in groups]) > 0.5
    sequences = {u: set(s.tolist()) for u, s in enumerate(data.train)}
    user_of_group = np.repeat(np.arange(data.n_users), 3)
    for u, group in zip(user_of_group, groups):
        assert not set(group[1:].tolist()) & sequences[u], "a negative the user rated in train"
    with pytest.raises(ValueError, match="unknown kind"):
        train_examples(data, ProbeConfig(negative_kinds=("obscure",)))


def test_auc_by_negatives_shows_popularity_own_auc_on_the_same_pairs():
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        rows.append({"user_id": u, "role": "heldout", "item_train_count": 50 + rng.integers(10)})
        rows += [
            {"user_id": u, "role": "random", "item_train_count": rng.integers(0, 20)}
            for _ in range(5)
        ]
        rows += [
            {"user_id": u, "role": "popularity_matched", "item_train_count": 50 + rng.integers(10)}
            for _ in range(5)
        ]
    frame = pd.DataFrame(rows)
    # a scorer that only knows popularity: perfect on random pairs, a coin on matched ones
    result = auc_by_negatives(frame.assign(score=frame["item_train_count"].astype(float)))
    assert set(result) == {"random", "popularity_matched"}
    assert result["random"]["auc"] == result["random"]["popularity_auc"] == 1.0
    assert 0.35 < result["popularity_matched"]["auc"] < 0.65
    assert result["popularity_matched"]["ci"][0] < 0.5 < result["popularity_matched"]["ci"][1]


def test_the_evaluator_split_holds_each_users_last_events_out_of_the_fitting():
    data = long_split()
    split = evaluator_split(data, n_heldout=10, min_prefix=5)
    assert len(split.users) == data.n_users
    for row, u in enumerate(split.users):
        fitted = {*split.fit.train[u].tolist(), int(split.fit.valid[u])}
        assert not fitted & set(split.heldout[row].tolist())
        assert np.array_equal(split.prefix[row], np.append(split.fit.train[u], split.fit.valid[u]))
        assert np.array_equal(np.append(split.prefix[row], split.heldout[row]), data.train[u])
    assert (split.fit.test == -1).all(), "the recommenders' test items are never read"
    short = evaluator_split(data, n_heldout=10, min_prefix=25)
    assert len(short.users) == 0 and all(len(t) == 30 for t in short.fit.train)


def test_a_ladder_keeps_the_best_head_and_fills_the_tail():
    best = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
    systems = ladders(best, {"popular": [[2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]]})
    assert len(systems) == LADDER_STEPS + 1
    assert systems["popular/0"] == best
    assert systems["popular/3"] == [[1, 2, 3, 4, 5, 6, 7, 20, 21, 22]]
    assert systems["popular/9"] == [[1, 2, 20, 21, 22, 23, 24, 25, 26, 27]]  # 2 was in both
    assert systems["popular/pure"] == [[2, 20, 21, 22, 23, 24, 25, 26, 27, 28]]
    assert all(len(set(one[0])) == 10 for one in systems.values())


def oracle_setup():
    """The best system lists each user's held-out events first; fillers hold none of them."""
    data = long_split(n_items=120)
    split = evaluator_split(data, n_heldout=10)
    best = [list(h) for h in split.heldout]
    outside = [
        [i for i in range(data.n_items) if i not in set(p.tolist()) | set(h.tolist())]
        for p, h in zip(split.prefix, split.heldout)
    ]
    systems = {"best": best, "filler": [o[:10] for o in outside]}
    systems.update(ladders(best, {"popular": outside, "random": [o[::-1] for o in outside]}))
    return data, split, systems


def test_an_evaluator_that_knows_the_held_out_events_orders_ladders_and_pairs_rightly():
    data, split, systems = oracle_setup()
    knows = np.zeros((len(split.users), data.n_items))
    for row, h in enumerate(split.heldout):
        knows[row, h] = 1.0
    report = check_evaluator(split, systems, knows, "mean", {"best": 0.3, "filler": 0.0})
    assert report["ladder_tau"] == pytest.approx({"popular": 1.0, "random": 1.0})
    assert report["ladders"]["popular"]["truth_hits_by_step"][0] == 10
    assert report["pure_popular_beats_best"] is False
    assert report["n_decisive"] == len(split.users) and report["verdict_truth_agreement"] == 1.0
    assert report["tau_vs_offline_ndcg"] == pytest.approx(1.0)


def test_an_evaluator_that_loves_popular_films_is_caught_by_the_ladder():
    data, split, systems = oracle_setup()
    # it scores each film by how often it was rated in the fitting data: the fillers' films (never
    # held out) are as often rated as any, so make them the popular ones
    loves = np.tile(np.linspace(1.0, 0.0, data.n_items), (len(split.users), 1))
    for row, one in enumerate(systems["popular/pure"]):
        loves[row, one] = 2.0
    report = check_evaluator(split, systems, loves, "mean", {"best": 0.3, "filler": 0.0})
    assert report["ladder_tau"]["popular"] == pytest.approx(-1.0)
    assert report["pure_popular_beats_best"] is True
    assert report["verdict_truth_agreement"] == 0.0
    hits = truth_hits(split, systems["popular/5"])
    assert (hits == 5).all()


def test_the_hard_negative_pools_are_what_popularity_and_a_content_retriever_would_show():
    counts = np.array([50, 40, 30, 20, 10, 5, 4, 3, 2, 1])
    vectors = np.random.default_rng(0).normal(size=(10, 6))
    vectors[7] = vectors[2] + 0.05  # film 7 reads like film 2; film 0 even more, but it was seen
    vectors[0] = vectors[2]
    sampler = NegativeSampler(counts, vectors, pool=3)
    history, seen = np.array([2]), np.array([2, 0])
    pools = sampler.hard_pools(["popular", "similar"], history, seen)
    assert pools["popular"].tolist() == [1, 3, 4]  # most rated, none seen
    assert pools["similar"][0] == 7 and not set(pools["similar"].tolist()) & {0, 2}
    rng = np.random.default_rng(0)
    drawn = sampler.sample(rng, ["popular", "similar", "random"], 9, seen, pools)
    assert len(drawn) == len(set(drawn)) == 3 and not set(drawn) & {0, 2}
    with pytest.raises(ValueError, match="need item vectors"):
        NegativeSampler(counts).check(["similar"])


def test_the_demo_prints_the_evaluator_check_of_a_summary():
    from orchestration.cli.reports import evaluator_lines

    summary = {
        "auc_by_negatives": {
            "popularity_matched": {"auc": 0.70, "ci": [0.68, 0.72], "popularity_auc": 0.52}
        },
        "ladder_tau": {"popular": 1.0, "random": None},
        "verdict_truth_agreement": 0.6,
        "verdict_truth_ci": [0.58, 0.62],
        "n_decisive": 6083,
    }
    lines = evaluator_lines(summary)
    assert "popularity_matched 0.700 [0.68, 0.72] (popularity 0.520)" in lines[0]
    assert "popular +1.00, random n/a" in lines[1]
    assert "0.60 [0.58, 0.62] of 6083 decided cases" in lines[2]
    assert evaluator_lines({}) == []


def test_an_evaluator_that_loves_long_cards_is_caught_and_its_verdicts_withheld():
    """Length bias: when the films people go on to pick have the shorter cards, an evaluator that
    scores a film by its card's length orders both ladders backwards and loses every decided pair."""
    from models.evaluation.evaluator_split import verdicts_earned

    data, split, systems = oracle_setup()
    rng = np.random.default_rng(1)
    card_length = rng.integers(200, 400, size=data.n_items).astype(float)
    picked = np.unique(np.concatenate(split.heldout))
    card_length[picked] = rng.integers(40, 120, size=len(picked))
    scores = np.tile(card_length, (len(split.users), 1))
    report = check_evaluator(split, systems, scores, "mean", {"best": 0.3, "filler": 0.0})
    assert max(report["ladder_tau"].values()) < 0.8
    earned, why_not = verdicts_earned(report)
    assert not earned and "ladder" in why_not and "not clear of a coin" in why_not
