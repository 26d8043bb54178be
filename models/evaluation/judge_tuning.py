"""Tuning the judge probe (models/evaluation/judge_probe.py) on a split: fit on train, calibrate on
valid, and say how well it ranks and how honest its probabilities are.

    tuned = tune_probe(vectors, data, ProbeConfig(seed=0), n_users=200, n_random=10, seed=0)
    tuned.probe, tuned.calibration, tuned.metrics (valid AUC + CI, ECE before/after calibration)
"""

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.common.stats import auc, auc_interval, ece
from models.evaluation.cases import random_unseen, sample_split_users
from models.evaluation.judge_probe import Calibration, ProbeConfig, fit_probe
from models.recsys.data import SplitData
from models.recsys.pair_probe import Probe


def calibration_sample(
    data: SplitData, vectors: np.ndarray, probe: Probe, n_users: int, n_random: int, seed: int
) -> pd.DataFrame:
    """Valid-split users (sampled by train activity, like the nightly judge): the held-out valid item
    and `n_random` items outside the user's train history and valid item, scored from train history."""
    users = data.eval_users("valid")
    index = {user_id: u for u, user_id in enumerate(data.users)}
    chosen = [index[u] for u in sample_split_users(data, users, n_users, seed)]
    rng = np.random.default_rng(seed)
    rows = []
    for u in chosen:
        history, target = data.train[u], data.valid[u]
        randoms = random_unseen(rng, data.n_items, np.append(history, target), n_random)
        items = np.append(target, randoms)
        scores = probe.raw_scores(vectors, history, items)
        rows += [
            {
                "user_id": data.users[u],
                "role": "heldout" if k == 0 else "random",
                "score": float(s),
                "label": int(k == 0),
            }
            for k, s in enumerate(scores)
        ]
    return pd.DataFrame(rows)


def cross_fitted_ece(sample: pd.DataFrame) -> float:
    """ECE of the calibration map on users it was not fitted on (two halves, each fitted on the
    other): an honest estimate, unlike the ECE of a map on its own fitting data."""
    users = np.array(sorted(sample["user_id"].unique()))
    half = set(users[np.random.default_rng(0).permutation(len(users))[: len(users) // 2]])
    first = sample["user_id"].isin(half)
    probabilities = np.zeros(len(sample))
    for fit_on, apply_to in ((first, ~first), (~first, first)):
        cal = Calibration.fit(
            sample.loc[fit_on, "score"].to_numpy(), sample.loc[fit_on, "label"].to_numpy()
        )
        probabilities[apply_to.to_numpy()] = cal(sample.loc[apply_to, "score"].to_numpy())
    return ece(probabilities, sample["label"].to_numpy())


@dataclass
class TunedProbe:
    probe: Probe
    calibration: Calibration
    sample: pd.DataFrame  # the valid calibration sample: user_id, role, score (raw), label
    valid_auc_ci: list[float]
    metrics: dict[str, float]


def tune_probe(
    vectors: np.ndarray,
    data: SplitData,
    config: ProbeConfig,
    *,
    n_users: int,
    n_random: int,
    seed: int,
) -> TunedProbe:
    """Fit the probe on train, its isotonic calibration on a valid sample, and measure both."""
    started = time.perf_counter()
    probe, facts = fit_probe(vectors, data, config)
    tuning_s = time.perf_counter() - started
    sample = calibration_sample(data, vectors, probe, n_users, n_random, seed)
    calibration = Calibration.fit(sample["score"].to_numpy(), sample["label"].to_numpy())
    heldout, random = (
        sample.loc[sample["label"] == 1, "score"],
        sample.loc[sample["label"] == 0, "score"],
    )
    valid_auc, interval = auc(heldout, random), auc_interval(sample)
    metrics = {
        "valid_auc": valid_auc,
        "valid_auc_ci_low": interval[0],
        "valid_auc_ci_high": interval[1],
        "ece_uncalibrated": ece(sample["score"].to_numpy(), sample["label"].to_numpy()),
        "ece_calibrated_cross_fitted": cross_fitted_ece(sample),
        "tuning_s": tuning_s,
        **facts,
    }
    return TunedProbe(probe, calibration, sample, interval, metrics)
