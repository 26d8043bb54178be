"""Data poisoning (LoRec, issue #11): fake users pushing a cold target item into real ML-100K, the
detector that flags them from TRAIN data alone, and a real SASRec trained clean, poisoned and
defended. bench/poisoning.py prints the full table (more seeds, full ML-100K exposure)."""

import numpy as np
import pandas as pd
import pytest
from support.data import ML100K_DIR, TODAY, write_ml100k_slice

from models.recsys.data import SplitData, leave_one_out
from models.robustness.poisoning import ATTACKS, INJECTED_FILE, exposure, inject, pick_target
from models.robustness.poisoning_detector import detect, precision_recall

SHARES = (0.01, 0.03, 0.05)


def ml100k_frame(max_user: int | None = None) -> pd.DataFrame:
    raw = pd.read_csv(ML100K_DIR / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    if max_user is not None:
        raw = raw[raw["user_id"].astype(int) <= max_user]
    raw["event_ts"] = pd.to_datetime(raw["timestamp"].astype(int), unit="s")
    columns = ["user_id", "item_id", "event_ts", "split", "source_file", "source_row"]
    return leave_one_out(raw)[columns].reset_index(drop=True)


@pytest.fixture(scope="module")
def ml100k():
    return ml100k_frame()


def test_fake_users_are_split_like_real_ones_and_end_train_on_the_target(ml100k):
    target = pick_target(ml100k, seed=0)
    assert 1 <= (ml100k[ml100k["split"] == "train"]["item_id"] == target).sum() <= 3  # cold
    for attack in ATTACKS:
        poisoned = inject(ml100k, attack, 0.03, target, seed=0)
        assert len(poisoned.fake_users) == round(0.03 * 943) and not poisoned.fake_users & set(
            ml100k["user_id"]
        )
        frame = poisoned.frame
        assert list(frame.columns) == list(ml100k.columns)
        pd.testing.assert_frame_equal(frame.iloc[: len(ml100k)], ml100k)  # real rows untouched
        fakes = frame[frame["user_id"].isin(poisoned.fake_users)]
        assert (fakes["source_file"] == INJECTED_FILE).all()
        data = SplitData.from_splits(frame)
        target_index = int(np.flatnonzero(data.items == target)[0])
        for u in np.flatnonzero(np.isin(data.users, list(poisoned.fake_users))):
            assert data.train[u][-1] == target_index and (data.train[u] == target_index).sum() >= 2
            assert (
                data.valid[u] >= 0
                and data.test[u] >= 0
                and target_index not in (data.valid[u], data.test[u])
            )
        again = inject(ml100k, attack, 0.03, target, seed=0)
        pd.testing.assert_frame_equal(again.frame, frame)  # seeded


def test_imitation_copies_real_sequences(ml100k):
    poisoned = inject(ml100k, "imitation", 0.01, pick_target(ml100k), seed=1)
    real = ml100k[ml100k["split"] == "train"].groupby("user_id")["item_id"].apply(set)
    for _, fake in poisoned.frame[poisoned.frame["user_id"].isin(poisoned.fake_users)].groupby(
        "user_id"
    ):
        fillers = set(fake.loc[fake["split"] == "train", "item_id"]) - {poisoned.target}
        assert (
            max(len(fillers & items) / len(fillers) for items in real) == 1.0
        )  # a subset of one real user


def test_detector_flags_few_real_users_on_clean_ml100k(ml100k):
    report = detect(SplitData.from_splits(ml100k))
    assert len(report) == 943 and report["score"].between(0, 10).all()
    # measured: 4 of 943 (0.4%), all `atypical_popularity` (niche tastes); the default-on defence rests on this
    assert report["flagged"].sum() <= 9, report[report["flagged"]]
    assert set(report.loc[report["flagged"], "reasons"]) <= {"atypical_popularity"}


# measured on ML-100K, seed 0 (bench/poisoning.py has more seeds): recall 1.00 for every attack and
# share; precision 0.69 / 0.88-0.90 / 0.90-0.94 at 1 / 3 / 5 % (the same 3-5 niche real users are the
# false positives). Sequence-imitation is no harder here: its fakes are caught by the shared last item.
@pytest.mark.parametrize("attack", ATTACKS)
def test_detection_precision_and_recall_per_attack_and_share(ml100k, attack):
    target = pick_target(ml100k, seed=0)
    for share in SHARES:
        poisoned = inject(ml100k, attack, share, target, seed=0)
        report = detect(
            SplitData.from_splits(poisoned.frame.drop(columns=["source_file"]))
        )  # no labels to see
        precision, recall = precision_recall(report, poisoned.fake_users)
        assert recall >= 0.95, (attack, share, recall)
        assert precision >= (0.6 if share == 0.01 else 0.8), (attack, share, precision)
        fakes = report[report["user_id"].isin(poisoned.fake_users)]
        assert fakes["reasons"].str.contains("shared_last_item").mean() >= 0.95


def test_detector_leaves_short_histories_alone_on_sparse_data():
    """Amazon-like data: most users rate once or twice, item popularity is Zipf. A short history
    always ends on its item and is as obscure as that item: no rule may fire on it."""
    rng = np.random.default_rng(0)
    n_users, n_items = 5000, 2000
    popularity = 1.0 / np.arange(1, n_items + 1)
    rows = []
    for user in range(n_users):
        length = 1 if rng.random() < 0.7 else int(rng.integers(2, 40))
        items = rng.choice(
            n_items, size=min(length, n_items), replace=False, p=popularity / popularity.sum()
        )
        rows += [(str(user), str(item), position) for position, item in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "position"])
    frame["event_ts"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(frame["position"], unit="D")
    report = detect(SplitData.from_splits(leave_one_out(frame[["user_id", "item_id", "event_ts"]])))
    assert report["flagged"].mean() < 0.02, report["reasons"].value_counts()


def test_evasive_attacks_that_never_end_on_the_target_are_what_the_detector_misses(ml100k):
    """The honest limit: without the shared last item, only profile-level rules remain. Measured at 5%,
    seed 0: random recall 0.87 (atypical_popularity), imitation 0.79 (near_duplicate), average 0.00."""
    target = pick_target(ml100k, seed=0)
    recall = {}
    for attack in ATTACKS:
        poisoned = inject(ml100k, attack, 0.05, target, seed=0, at_end=False)
        data = SplitData.from_splits(poisoned.frame)
        target_index = int(np.flatnonzero(data.items == target)[0])
        fakes = np.flatnonzero(np.isin(data.users, list(poisoned.fake_users)))
        assert all(
            data.train[u][-1] != target_index and target_index in data.train[u] for u in fakes
        )
        recall[attack] = precision_recall(detect(data), poisoned.fake_users)[1]
    assert recall["random"] >= 0.7 and recall["imitation"] >= 0.6, recall
    assert recall["average"] <= 0.1, (
        recall
    )  # a popularity-shaped profile with no copy and no shared end: unseen


def test_attack_raises_target_exposure_and_the_defence_brings_it_back(ml100k):
    """A real SASRec (the champion family, short budget) on ML-100K's first 300 users, 5% imitation
    fakes: trained without the fakes (clean), with them (poisoned), and without the flagged users
    (defended). Exposure = share of real users whose test-time top-10 holds the target.
    Measured: clean 0.00, poisoned 0.52, defended 0.00."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _exposure_check(ml100k)
    finally:
        torch.set_num_threads(threads)  # other tests train with their own setting


def _exposure_check(ml100k):
    from models.recsys.metrics import evaluate
    from models.recsys.sasrec import SASRec

    frame = ml100k[ml100k["user_id"].astype(int) <= 300]
    poisoned = inject(frame, "imitation", 0.05, pick_target(frame, seed=0), seed=0)
    data = SplitData.from_splits(poisoned.frame)
    fake = np.isin(data.users, list(poisoned.fake_users))
    report = detect(data)
    target = int(np.flatnonzero(data.items == poisoned.target)[0])

    def target_exposure(fit_data: SplitData) -> float:
        model = SASRec(SASRec.Config(max_epochs=5, patience=5, seed=0, device="cpu"))
        model.fit(fit_data, log=lambda _: None)
        test = evaluate(model, data, "test")  # the full split, real users only below
        return exposure(test.topk[~fake[test.users]], target)

    clean = target_exposure(data.without_users(np.flatnonzero(fake)))  # same index space, no fakes
    attacked = target_exposure(data)
    defended = target_exposure(data.without_users(np.flatnonzero(report["flagged"].to_numpy())))
    print(
        f"\ntarget exposure in real users' top-10: clean {clean:.3f}, poisoned {attacked:.3f}, defended {defended:.3f}"
    )
    assert clean <= 0.02
    assert attacked >= 0.2 and attacked >= clean + 0.15
    assert defended <= clean + 0.02


def test_without_users_keeps_the_index_space_and_the_evaluation(slice_data):
    left_out = np.array([0, 5])
    fit_data = slice_data.without_users(left_out)
    assert fit_data.n_users == slice_data.n_users and list(fit_data.items) == list(slice_data.items)
    assert all(len(fit_data.train[u]) == 0 and fit_data.valid[u] < 0 for u in left_out)
    assert len(fit_data.eval_users("valid")) == len(slice_data.eval_users("valid")) - 2
    assert all(np.array_equal(fit_data.train[u], slice_data.train[u]) for u in range(1, 5))


def test_suspicious_users_asset_materializes_and_skips_when_splits_unchanged(tmp_path):
    """The Dagster asset on a real warehouse (the ingest_transform job on ML-100K's first 120 users)."""
    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import WAREHOUSE_JOB, build_defs
    from orchestration.defs.training.suspicious_users import flagged_user_ids, suspicious_users

    data_dir = write_ml100k_slice(tmp_path / "ml-100k", 120)
    home = tmp_path / "home"
    lake = LakeResource(home=str(home), dataset="ml-100k", data_dir=str(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        warehouse = (
            build_defs(lake)
            .resolve_job_def(WAREHOUSE_JOB)
            .execute_in_process(instance=instance, partition_key=TODAY)
        )
        assert warehouse.success
        runs = [
            dg.materialize([suspicious_users], resources={"lake": lake}, instance=instance)
            for _ in range(2)
        ]
    assert all(r.success for r in runs)
    first, second = (
        r.asset_materializations_for_node("suspicious_users")[0].metadata for r in runs
    )
    report = pd.read_parquet(home / "lake" / "evaluation" / "suspicious_users.parquet")
    assert list(report.columns) == ["user_id", "score", "flagged", "reasons"] and len(report) == 120
    assert first["n_users"].value == 120 and first["n_flagged"].value == int(
        report["flagged"].sum()
    )
    assert first["n_flagged"].value <= 3  # real users only
    assert "score_histogram" in first and "skipped" not in first
    assert "skipped" in second  # splits unchanged: not recomputed

    # what training does with it: the flagged users' rows are left out of fitting, on this splits version only
    from orchestration.core.warehouse import load_splits
    from orchestration.defs.training.assets import defended
    from orchestration.defs.training.resources import TrainingResource

    data, version = load_splits(lake.warehouse_path)
    flagged = set(report.loc[report["flagged"], "user_id"])
    assert flagged_user_ids(lake, version) == flagged
    fit_data, left_out = defended(lake, TrainingResource(poisoning_defence=True), data, version)
    assert left_out == str(len(flagged))
    assert all(
        len(fit_data.train[u]) == 0 for u in np.flatnonzero(np.isin(data.users, list(flagged)))
    )
    assert defended(lake, TrainingResource(poisoning_defence=False), data, version) == (data, "0")
    with pytest.raises(dg.Failure, match="materialize suspicious_users again"):
        defended(lake, TrainingResource(poisoning_defence=True), data, "another-splits-version")
