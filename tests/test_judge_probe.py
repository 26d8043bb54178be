"""The tuned judge (models/evaluation/judge_probe.py): what it learns from, that it learns, its calibration,
its file, its order-free verdict, and the cached reading of item cards."""

import numpy as np
import pandas as pd
import pytest

from models.common.stats import auc, ece, reliability, wilson
from models.evaluation.cases import random_unseen
from models.evaluation.judge import JudgeCase
from models.evaluation.judge_cards import item_card_texts, natural_title, read_cards
from models.evaluation.judge_probe import (
    Calibration,
    ProbeConfig,
    dump,
    fit_probe,
    load,
    train_examples,
)
from models.evaluation.judge_summary import summarize, verdict_truth_agreement
from models.recsys.data import SplitData


def clustered_split(n_users=120, n_items=60, length=14, informative=True, seed=0):
    """Users who each stick to one of two item clusters (even / odd ids), as SplitData, with item
    vectors that show the cluster (or, with informative=False, random vectors that do not)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        picks = rng.choice(np.arange(u % 2, n_items, 2), size=length + 2, replace=False)
        for t, item in enumerate(picks):
            split = "train" if t < length else ("valid" if t == length else "test")
            rows.append(
                {"user_id": f"u{u:03d}", "item_id": f"i{item:03d}", "event_ts": t, "split": split}
            )
    data = SplitData.from_splits(pd.DataFrame(rows))
    cluster = np.array([int(i[1:]) % 2 for i in data.items])
    vectors = rng.normal(size=(n_items, 8)).astype(np.float32)
    if informative:
        vectors[:, 0] = np.where(cluster == 1, 3.0, -3.0) + rng.normal(scale=0.3, size=n_items)
    return data, vectors


def heldout_auc(probe, data, vectors, stage="valid", n_random=10, seed=1):
    rng = np.random.default_rng(seed)
    pos, neg = [], []
    for u, history in zip(data.eval_users(stage), data.histories(data.eval_users(stage), stage)):
        target = data.target(stage)[u]
        randoms = random_unseen(rng, data.n_items, np.append(history, target), n_random)
        scores = probe.raw_scores(vectors, history, np.append(target, randoms))
        pos.append(scores[0])
        neg.extend(scores[1:])
    return auc(pos, neg)


def test_the_probe_learns_from_train_items_only():
    data, _ = clustered_split()
    config = ProbeConfig(targets_per_user=3, negatives_per_target=2)
    histories, items, labels = train_examples(data, config)
    held_out = {(u, data.valid[u]) for u in range(data.n_users)} | {
        (u, data.test[u]) for u in range(data.n_users)
    }
    row = 0
    for sequence in data.train:
        for _ in range(config.targets_per_user * (1 + config.negatives_per_target)):
            # each example's history is the start of the user's train sequence, before its targets
            assert np.array_equal(histories[row], sequence[: -config.targets_per_user])
            if labels[row] == 1:
                assert items[row] in sequence[-config.targets_per_user :]
            else:
                assert (
                    items[row] not in sequence
                )  # a negative is never an item of the user's train history
            row += 1
    positives = {
        (u, i)
        for u in range(data.n_users)
        for i in items[labels == 1][u * config.targets_per_user : (u + 1) * config.targets_per_user]
    }
    assert not positives & held_out


def test_short_histories_give_fewer_targets_and_none_below_the_minimum():
    rows = [
        {"user_id": u, "item_id": f"{u}{n}", "event_ts": n, "split": "train"}
        for u, length in (("a", 3), ("b", 2))
        for n in range(length)
    ]
    data = SplitData.from_splits(
        pd.DataFrame(
            rows
            + [
                {"user_id": "c", "item_id": f"i{n}", "event_ts": n, "split": "train"}
                for n in range(6)
            ]
        )
    )
    histories, items, labels = train_examples(
        data, ProbeConfig(targets_per_user=10, negatives_per_target=1, min_history=2)
    )
    # a: 1 target after 2 history items; b: none; c: 4 targets (6 - 2); each with one negative
    assert labels.sum() == 5 and len(labels) == 10 and min(len(h) for h in histories) == 2
    with pytest.raises(ValueError, match="no user has more than 2 train items"):
        train_examples(
            SplitData.from_splits(pd.DataFrame(rows[3:])),
            ProbeConfig(min_history=2, negative_kinds=("random",)),
        )


def test_the_probe_ranks_held_out_items_when_the_vectors_carry_taste_and_not_otherwise():
    data, vectors = clustered_split()
    probe, facts = fit_probe(vectors, data, ProbeConfig(targets_per_user=5))
    assert facts["train_positives"] == 5 * data.n_users
    # the ceiling is ~0.84: about a third of a user's unseen items are in their own cluster
    assert (
        heldout_auc(probe, data, vectors, "valid") > 0.78
        and heldout_auc(probe, data, vectors, "test") > 0.78
    )
    # the same users over random item vectors: nothing to learn, and the probe does not pretend
    noise_data, noise = clustered_split(informative=False)
    noise_probe, _ = fit_probe(noise, noise_data, ProbeConfig(targets_per_user=5))
    assert abs(heldout_auc(noise_probe, noise_data, noise, "valid") - 0.5) < 0.15


def test_isotonic_calibration_fixes_overconfident_scores_and_the_reliability_table_counts_every_score():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 0.3, size=4000)
    labels = (rng.uniform(size=4000) < truth).astype(float)
    overconfident = np.sqrt(truth)  # ranks right, probabilities far too high
    fit, check = slice(0, 2000), slice(2000, 4000)
    calibration = Calibration.fit(overconfident[fit], labels[fit])
    assert ece(overconfident[check], labels[check]) > 0.2
    assert (
        ece(calibration(overconfident[check]), labels[check]) < 0.03
    )  # on scores it was not fitted on
    table = reliability(calibration(overconfident[check]), labels[check])
    assert table["count"].sum() == 2000 and table["predicted"].between(0, 1).all()


def test_a_saved_judge_scores_the_same_and_its_verdict_reads_no_order(tmp_path):
    data, vectors = clustered_split()
    probe, _ = fit_probe(vectors, data, ProbeConfig(targets_per_user=5))
    calibration = Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    path = tmp_path / "probe.npz"
    path.write_bytes(dump(probe, calibration, vectors, data.items, ProbeConfig()))
    judge = load(path, name="probe:test")
    history = [str(i) for i in data.items[data.train[0]]]
    candidates = [str(i) for i in data.items[:10]]
    index = {item: n for n, item in enumerate(data.items)}
    np.testing.assert_allclose(
        judge.scores(history, candidates),
        probe.raw_scores(vectors, data.train[0], np.array([index[i] for i in candidates])),
        rtol=1e-6,
    )
    # user 0 likes the even cluster: a list of even items beats a list of odd ones, in either role
    even, odd = [str(i) for i in data.items[0:10:2]], [str(i) for i in data.items[1:10:2]]
    case = JudgeCase(
        "u000",
        "",
        champion=even,
        baseline=odd,
        heldout=str(data.items[data.test[0]]),
        history=history,
    )
    swapped = JudgeCase(
        "u000", "", champion=odd, baseline=even, heldout=case.heldout, history=history
    )
    (_, first), (_, second) = judge.judge_case(case, {}, {}), judge.judge_case(swapped, {}, {})
    assert first.verdict == "champion" and second.verdict == "baseline"
    assert first.p_first_order == first.p_swapped and first.p_first_order == pytest.approx(
        1 - second.p_first_order
    )


def test_item_cards_read_titles_as_written_with_year_and_genres():
    assert (
        natural_title("Wizard of Oz, The") == "The Wizard of Oz"
        and natural_title("Fargo") == "Fargo"
    )
    assert item_card_texts(
        ["Wizard of Oz, The", "Fargo"], [1939, None], ["Adventure|Musical", None]
    ) == ["The Wizard of Oz (1939). Genres: Adventure, Musical.", "Fargo. Genres: unknown."]


class CountingBackend:
    """A fake backend that records which texts it was asked to read (fault injection for the cache)."""

    model, dtype = "fake-model", "torch.float32"

    def __init__(self):
        self.asked = []

    def hidden_states(self, texts, depth=0.5):
        self.asked += texts
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def test_card_vectors_are_cached_by_text_and_only_new_cards_are_read(tmp_path):
    backend = CountingBackend()
    first = read_cards(backend, ["a", "bb", "a"], tmp_path, log=lambda _: None)
    assert sorted(backend.asked) == ["a", "bb"] and np.allclose(np.linalg.norm(first, axis=1), 1)
    second = read_cards(backend, ["bb", "ccc", "a"], tmp_path, log=lambda _: None)
    assert sorted(backend.asked) == ["a", "bb", "ccc"]  # only the new card was read
    np.testing.assert_allclose(second[[0, 2]], first[[1, 0]])
    assert not list((tmp_path / "hidden_states").glob("*.tmp"))


def test_hidden_states_do_not_depend_on_the_batch(embedded):
    texts = [
        "Toy Story (1995). Genres: Animation.",
        "A much longer card that pads the batch out. Genres: Drama, War.",
    ]
    together = embedded.hidden_states(texts)
    alone = embedded.hidden_states(texts[:1])
    assert together.shape == (2, embedded.lm.config.hidden_size)
    # equal up to bf16 rounding (the padded batch runs other matrix shapes): far closer than two
    # texts are to each other (raw vectors share a large common direction, so compare differences)
    batch_error = np.linalg.norm(together[0] - alone[0])
    assert batch_error < 0.05 * np.linalg.norm(together[0] - together[1])


def test_list_verdicts_count_only_when_the_evaluator_split_check_earns_them():
    def frames(agreeing: int, n: int = 30):
        point, pair = [], []
        for u in range(n):
            champion_hit = u % 2 == 0  # the test item is in the champion's list for even users
            point += [
                {
                    "user_id": f"u{u}",
                    "item_id": "h",
                    "role": "heldout",
                    "score": 0.9,
                    "is_heldout_truth": True,
                },
                {
                    "user_id": f"u{u}",
                    "item_id": "r",
                    "role": "random",
                    "score": 0.1,
                    "is_heldout_truth": False,
                },
                {
                    "user_id": f"u{u}",
                    "item_id": "h" if champion_hit else "c",
                    "role": "champion",
                    "score": 0.5,
                    "is_heldout_truth": champion_hit,
                },
                {
                    "user_id": f"u{u}",
                    "item_id": "b" if champion_hit else "h",
                    "role": "baseline",
                    "score": 0.5,
                    "is_heldout_truth": not champion_hit,
                },
            ]
            right = "champion" if champion_hit else "baseline"
            verdict = right if u < agreeing else ("baseline" if right == "champion" else "champion")
            pair.append(
                {
                    "user_id": f"u{u}",
                    "verdict": verdict,
                    "p_champion_first_order": 0.5,
                    "p_champion_swapped": 0.5,
                }
            )
        return pd.DataFrame(point), pd.DataFrame(pair)

    def check(agreement, ci, popular_tau=0.9):
        # the fields of models/evaluation/evaluator_split.check_evaluator the trust rule reads
        return {
            "ladder_tau": {"popular": popular_tau, "random": 1.0},
            "verdict_truth_agreement": agreement,
            "verdict_truth_ci": ci,
            "n_decisive": 1200,
        }

    good = summarize(*frames(agreeing=27), check(0.7, [0.66, 0.74]))
    assert good["trusted"] and good["verdicts_trusted"] and good["withheld_reason"] is None
    assert good["verdict_truth_agreement"] == 0.7 and good["n_decisive"] == 1200
    assert good["ladder_tau"]["popular"] == 0.9 and good["champion_win_rate"] is not None
    # the nightly pair on its test items, reported beside
    assert good["test_verdict_truth"]["verdict_truth_agreement"] == 0.9
    assert good["test_verdict_truth"]["verdict_truth_ci"] == wilson(27, 30)
    # the same trusted item scores with list verdicts no better than a coin: win rates withheld, saying why
    coin = summarize(*frames(agreeing=27), check(0.51, [0.47, 0.55]))
    assert coin["trusted"] and not coin["verdicts_trusted"] and coin["champion_win_rate"] is None
    assert "not clear of a coin" in coin["withheld_reason"]
    # ... or that puts popular films above the best list
    popular = summarize(*frames(agreeing=27), check(0.7, [0.66, 0.74], popular_tau=-0.6))
    assert not popular["verdicts_trusted"] and "popular ladder" in popular["withheld_reason"]
    unchecked = summarize(*frames(agreeing=27))
    assert not unchecked["verdicts_trusted"] and "not checked" in unchecked["withheld_reason"]
    assert verdict_truth_agreement(*frames(agreeing=15))["verdict_truth_agreement"] == 0.5
    low, high = wilson(15, 30)
    assert low < 0.5 < high
