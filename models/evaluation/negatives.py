"""The items an evaluator must score below a user's real next film, in three kinds.

Random unseen films are mostly obscure, so "the real film beats a random one" rewards knowing what
is popular: popularity alone scores an AUC of about 0.82 on such pairs (Krichene & Rendle, "On
Sampled Metrics for Item Recommendation"). The other two kinds take that away:

    random               unseen films drawn uniformly
    popularity_matched   unseen films of the positive's popularity decile (train counts)
    in_list              films a model ranked high for the user that the user did not pick

    deciles = popularity_deciles(data.train_counts())
    matched = popularity_matched(rng, deciles, positive, seen, n=10)
    hard = in_list([champion_list, baseline_list], positive, seen)
    auc_by_negatives(pointwise)     per kind: AUC, its interval, popularity's AUC on the same pairs

What a judge or a choice model learns against (`NegativeSampler`) adds two kinds of hard ones:
popularity's top unseen films and the films nearest the user's history, what a popularity list and
a content retriever would show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.common.stats import auc, auc_interval

NEGATIVE_KINDS = ("random", "popularity_matched", "in_list")
DECILES = 10


def popularity_deciles(counts: np.ndarray) -> np.ndarray:
    """Each item's popularity decile, 0 (least rated) to 9, by its rank among all items' counts
    (ties in index order, so every decile holds a tenth of the catalogue)."""
    counts = np.asarray(counts)
    rank = np.empty(len(counts), np.int64)
    rank[np.argsort(counts, kind="stable")] = np.arange(len(counts))
    return (rank * DECILES) // max(len(counts), 1)


def popularity_matched(
    rng: np.random.Generator, deciles: np.ndarray, positive: int, seen: np.ndarray, n: int
) -> np.ndarray:
    """`n` distinct items (fewer when fewer exist) of `positive`'s decile, none of them in `seen`
    (which includes the positive)."""
    pool = np.flatnonzero(deciles == deciles[positive])
    pool = np.setdiff1d(pool, np.append(seen, positive))
    return rng.choice(pool, size=min(n, len(pool)), replace=False)


def in_list(lists: list[list], positive, seen) -> list:
    """The items of `lists` (each a model's ranked list for this user) other than the positive and
    anything in `seen`, once each, in list order: what models put forward that the user passed by."""
    skip = {positive, *seen}
    return [item for item in dict.fromkeys(i for one in lists for i in one) if item not in skip]


def top_unseen(order: np.ndarray, seen: np.ndarray, n: int) -> np.ndarray:
    """The first `n` items of a global ranking (`order`, best first) outside `seen`: a
    non-personalized model's list, e.g. popularity's."""
    return order[~np.isin(order, seen)][:n]


class NegativeSampler:
    """Negatives of the kinds a judge or a choice model learns against, for one catalogue:
    "random" (uniform unseen), "popularity_matched" (the positive's decile), "popular" (popularity's
    top `pool` unseen) and "similar" (the `pool` unseen items nearest the history's mean vector: a
    content retriever's list; needs `vectors`)."""

    KINDS = ("random", "popularity_matched", "popular", "similar")

    def __init__(self, counts: np.ndarray, vectors: np.ndarray | None = None, pool: int = 50):
        self.deciles = popularity_deciles(counts)
        self.by_popularity = np.argsort(-np.asarray(counts), kind="stable")
        self.vectors, self.pool, self.n_items = vectors, pool, len(counts)

    def check(self, kinds) -> None:
        """Fails on an unknown kind, or on "similar" without item vectors."""
        unknown = set(kinds) - set(self.KINDS)
        if unknown or not kinds:
            raise ValueError(f"negative kinds {tuple(kinds)}: unknown kind(s) {unknown or 'none'}")
        if "similar" in kinds and self.vectors is None:
            raise ValueError("similar negatives need item vectors")

    def hard_pools(self, kinds, history: np.ndarray, seen: np.ndarray) -> dict[str, np.ndarray]:
        """A user's popular and similar candidates (computed once, shared by their positives)."""
        pools = {}
        if "popular" in kinds:
            pools["popular"] = top_unseen(self.by_popularity, seen, self.pool)
        if "similar" in kinds and len(history):
            closeness = self.vectors @ self.vectors[history].mean(axis=0)
            pools["similar"] = top_unseen(np.argsort(-closeness, kind="stable"), seen, self.pool)
        return pools

    def sample(self, rng, kinds: list[str], positive: int, seen: np.ndarray, pools: dict) -> list:
        """One negative per entry of `kinds` (fewer where a pool runs dry), distinct, unseen."""
        negatives: list = []
        for kind in dict.fromkeys(kinds):
            n = kinds.count(kind)
            if kind == "random":
                pool = np.setdiff1d(np.arange(self.n_items), np.concatenate([seen, negatives]))
            elif kind == "popularity_matched":
                taken = np.concatenate([seen, negatives]).astype(np.int64)
                negatives += list(popularity_matched(rng, self.deciles, positive, taken, n))
                continue
            else:
                pool = np.setdiff1d(pools.get(kind, []), negatives)
            negatives += list(rng.choice(pool, size=min(n, len(pool)), replace=False))
        return negatives


def auc_by_negatives(
    pointwise: pd.DataFrame, score: str = "score", popularity: str = "item_train_count"
) -> dict[str, dict]:
    """For each kind with rows (`role` == the kind): the held-out items' pooled AUC against them with
    its user-bootstrap interval, and popularity's AUC on the very same pairs (the bar to clear)."""
    out = {}
    for kind in NEGATIVE_KINDS:
        users = set(pointwise.loc[pointwise["role"] == kind, "user_id"]) & set(
            pointwise.loc[pointwise["role"] == "heldout", "user_id"]
        )
        pairs = pointwise[
            pointwise["role"].isin(["heldout", kind]) & pointwise["user_id"].isin(users)
        ]
        if pairs.empty:
            continue
        held, negative = pairs[pairs["role"] == "heldout"], pairs[pairs["role"] == kind]
        out[kind] = {
            "auc": round(auc(held[score], negative[score]), 4),
            "ci": auc_interval(pairs, negative=kind, score=score),
            "popularity_auc": round(auc(held[popularity], negative[popularity]), 4),
            "n_users": len(users),
            "n_negatives": len(negative),
        }
    return out
