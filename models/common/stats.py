"""The statistics every evaluator shares: AUC and its user-bootstrap interval, Wilson intervals of
proportions, calibration (reliability, ECE), paired bootstrap intervals of per-user means, Kendall's tau.

Intervals resample users, never items: one user's scores are not independent draws. Every
bootstrap takes its seed, so the same inputs give the same interval.
"""

import numpy as np
import pandas as pd
from scipy.stats import kendalltau


def auc(positive, negative) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U / (n*m))."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError("auc needs at least one positive and one negative score")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def auc_interval(
    pointwise: pd.DataFrame,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    negative: str = "random",
    score: str = "score",
) -> list[float]:
    """Percentile bootstrap of the pooled held-out-vs-`negative` AUC (rows by `role`), resampling
    users (a user's items are not independent draws). Pair counts between every two users are
    computed once, so each resample is two matrix products: AUC = w'Cw / ((w.P)(w.N)) for user
    multiplicities w."""
    frame = pointwise[pointwise["role"].isin(["heldout", negative])]
    users = sorted(frame["user_id"].unique())
    code = frame["user_id"].map({u: n for n, u in enumerate(users)}).to_numpy()
    is_pos = (frame["role"] == "heldout").to_numpy()
    values = frame[score].to_numpy(float)
    neg_scores, neg_users = values[~is_pos], code[~is_pos]
    # wins[i, j]: pairs where a positive of user i outscores a negative of user j (ties half)
    wins = np.zeros((len(users), len(users)))
    for user, value in zip(code[is_pos], values[is_pos]):
        wins[user] += np.bincount(neg_users[neg_scores < value], minlength=len(users))
        wins[user] += 0.5 * np.bincount(neg_users[neg_scores == value], minlength=len(users))
    n_pos = np.bincount(code[is_pos], minlength=len(users)).astype(float)
    n_neg = np.bincount(neg_users, minlength=len(users)).astype(float)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(users), np.full(len(users), 1 / len(users)), size=n_boot).astype(
        float
    )
    denominators = (weights @ n_pos) * (weights @ n_neg)
    valid = denominators > 0
    samples = np.einsum("bi,ij,bj->b", weights[valid], wins, weights[valid]) / denominators[valid]
    tail = (1 - level) / 2 * 100
    return [
        round(float(np.percentile(samples, tail)), 4),
        round(float(np.percentile(samples, 100 - tail)), 4),
    ]


def wilson(successes: int, n: int, z: float = 1.96) -> list[float]:
    """The Wilson score interval of a proportion (sane at small n and near 0 or 1)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-width bins: mean predicted vs observed rate and count (the reliability curve)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "p": probabilities, "y": labels})
    return (
        frame.groupby("bin")
        .agg(predicted=("p", "mean"), observed=("y", "mean"), count=("y", "size"))
        .reset_index()
    )


def ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted gap between predicted and observed rates."""
    table = reliability(np.asarray(probabilities, float), np.asarray(labels, float), bins)
    return float(
        (table["count"] * (table["predicted"] - table["observed"]).abs()).sum()
        / table["count"].sum()
    )


def paired_interval(
    differences: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-user values (users resampled): the gate's
    differences between two models, the simulator's pick rates."""
    rng = np.random.default_rng(seed)
    means = np.array(
        [
            differences[rng.integers(0, len(differences), len(differences))].mean()
            for _ in range(resamples)
        ]
    )
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def ratio_interval(
    a: np.ndarray, b: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float | None, list[float] | None]:
    """sum(a) / sum(b) of paired per-user values (hit@10 of a model and of a reference on the same
    users) and its percentile bootstrap interval, users resampled; None where b sums to zero."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not len(a) or b.sum() == 0:
        return None, None
    draws = np.random.default_rng(seed).integers(0, len(a), (resamples, len(a)))
    sums_a, sums_b = a[draws].sum(1), b[draws].sum(1)
    ratios = sums_a[sums_b > 0] / sums_b[sums_b > 0]
    tail = (1 - level) / 2 * 100
    return float(a.sum() / b.sum()), [float(q) for q in np.percentile(ratios, [tail, 100 - tail])]


def bootstrap_mean(values: pd.Series) -> list[float]:
    """95% percentile interval of the mean over users (one value per user), users resampled."""
    return [round(bound, 4) for bound in paired_interval(values.to_numpy(float))]


def kendall_tau(first, second) -> float | None:
    """Kendall's tau-b between two orders of the same things; None when it is undefined (a constant side)."""
    tau = float(kendalltau(first, second).statistic)
    return None if np.isnan(tau) else tau
