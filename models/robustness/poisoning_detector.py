"""Flagging suspicious users (the fake users of poisoning.py) from TRAIN data before any model
learns from them, and how well the flags match the truth (`precision_recall`).

    report = detect(SplitData.from_splits(poisoned.frame))      # score, flagged, reasons per user
    precision_recall(report, poisoned.fake_users)

Detector (no labels, TRAIN only; each rule's score is in units of its threshold, flagged at >= 1):
    shared_last_item  the user's last train item is the last train item of an unusual share of
                      everyone who has it (Wilson 95% lower bound of last/holders, with at least
                      `min_group` users): a group that all ends on one item is a campaign
    atypical_popularity  the mean log train-popularity of the user's items is far below the
                      population's (robust z): uniform random fillers are mostly obscure items
    near_duplicate    train-set Jaccard to some other user at or above `duplicate_jaccard`
                      with a user at least as large (a copy keeps a subset of its template, so
                      of a copied pair only the copy scores); under `min_items` train items: exempt
Timing is not used: 44% of real ML-100K users rate several items in one second, so bursts are normal.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from models.recsys.data import SplitData


@dataclass
class DetectorConfig:
    min_group: int = 5  # users ending on one item before that can count as a campaign
    # Wilson lower bound of (users ending on it / holding it); clean ML-100K max: 0.02
    group_bound: float = 0.2
    popularity_z: float = 4.0  # robust z below the median mean-log-popularity that is atypical
    duplicate_jaccard: float = 0.75  # train-set Jaccard to another user that counts as a copy
    # users with fewer train items are judged by no rule: a one-item history always "ends" on its item
    # and is "obscure" when that item is, so on sparse data (Amazon: most users rate once) every rule
    # would fire on ordinary users (80% flagged on a sparse synthetic set before this bound)
    min_items: int = 10


def _wilson_lower(hits: np.ndarray, n: np.ndarray, z: float = 1.96) -> np.ndarray:
    n = np.maximum(n, 1)
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n)


def _train_matrix(data: SplitData) -> sparse.csr_matrix:
    rows = np.repeat(np.arange(data.n_users), [len(t) for t in data.train])
    cols = np.concatenate(data.train) if data.n_users else np.zeros(0, np.int64)
    x = sparse.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(data.n_users, data.n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0  # repeated items count once
    return x


def detect(data: SplitData, config: DetectorConfig = DetectorConfig()) -> pd.DataFrame:
    """One row per user: user_id, score (max over rules, in units of each rule's threshold),
    flagged (score >= 1), reasons (the rules at or above threshold, comma-separated)."""
    lengths = np.array([len(t) for t in data.train], dtype=np.int64)
    judged = lengths >= config.min_items
    rules = {}

    x = _train_matrix(data)
    holders = np.asarray(x.sum(axis=0)).ravel()  # distinct users with the item in train

    # shared_last_item: share of an item's holders for whom it is the last train item
    last = np.array([t[-1] if len(t) else -1 for t in data.train])
    enders = np.bincount(last[judged], minlength=data.n_items)
    bound = np.where(enders >= config.min_group, _wilson_lower(enders, holders), 0.0)
    rules["shared_last_item"] = (
        np.where(judged, bound[np.maximum(last, 0)], 0.0) / config.group_bound
    )

    # atypical_popularity: robust z of the mean log-popularity of the user's train items
    log_pop = np.log1p(holders)
    mean_pop = np.array([log_pop[t].mean() if len(t) else np.nan for t in data.train])
    median = np.nanmedian(mean_pop)
    mad = 1.4826 * np.nanmedian(np.abs(mean_pop - median)) or 1.0
    atypical = np.nan_to_num(np.maximum(median - mean_pop, 0) / mad) / config.popularity_z
    rules["atypical_popularity"] = np.where(judged, atypical, 0.0)

    # near_duplicate: the largest train-set Jaccard to another judged user. Only judged users enter
    # the users x users product: short histories are most users on sparse data, and their pairs
    # through one popular item would make the product quadratic in its holders.
    long = np.flatnonzero(judged)
    xl = x[long]
    inter = (xl @ xl.T).tocoo()
    sizes = np.asarray(xl.sum(axis=1)).ravel()
    off = inter.row != inter.col
    # of a copied pair only the smaller profile scores: a copy keeps a subset of its template
    off &= sizes[inter.row] <= sizes[inter.col]
    jac = inter.data[off] / (sizes[inter.row[off]] + sizes[inter.col[off]] - inter.data[off])
    best = np.zeros(len(long))
    np.maximum.at(best, inter.row[off], jac)
    duplicate = np.zeros(data.n_users)
    duplicate[long] = best
    rules["near_duplicate"] = duplicate / config.duplicate_jaccard

    scores = np.column_stack(list(rules.values()))
    names = np.array(list(rules))
    return pd.DataFrame(
        {
            "user_id": data.users.astype(str),
            "score": scores.max(axis=1).round(6),
            "flagged": scores.max(axis=1) >= 1.0,
            "reasons": [",".join(names[row >= 1.0]) for row in scores],
        }
    )


def precision_recall(report: pd.DataFrame, fake_users: set[str]) -> tuple[float, float]:
    flagged = set(report.loc[report["flagged"], "user_id"])
    hits = len(flagged & fake_users)
    return (hits / len(flagged) if flagged else 0.0), (
        hits / len(fake_users) if fake_users else 0.0
    )
