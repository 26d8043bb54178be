"""A logistic probe over (user, item) pairs of item vectors: the scorer inside the tuned judge
(models/evaluation/judge_probe.py fits it) and the judge feature of the two-stage ranker (which reads it back).

    x = [user * item, item, user]     an item is its vector, a user the mean of their history's
    score = sigmoid(((x - mean) / scale) @ coef + intercept)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.recsys.data import mean_vectors


def pair_features(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    return np.hstack([users * items, items, users])


@dataclass
class Probe:
    """Standardize, then a logistic regression: the whole tuned judge, a few thousand numbers."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def raw_scores(self, vectors: np.ndarray, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.repeat(mean_vectors(vectors, [history]), len(items), axis=0)
        x = (pair_features(users, vectors[items]) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def candidate_scores(
        self, vectors: np.ndarray, histories: list[np.ndarray], items: np.ndarray
    ) -> np.ndarray:
        """`raw_scores` for many users at once: [users, N] for items [users, N]. The standardized
        linear map is folded into the weights, so the [users * N, 3d] pair features are never built:
        one [users, d] x [d, all items] product, then each user's N are picked."""
        d = vectors.shape[1]
        weight = self.coef / self.scale
        w_pair, w_item, w_user = weight[:d], weight[d : 2 * d], weight[2 * d :]
        users = mean_vectors(vectors, histories)  # [B, d]
        every_item = (users * w_pair) @ vectors.T + vectors @ w_item  # [B, all items]
        logit = (
            np.take_along_axis(every_item, items, axis=1)
            + (users @ w_user)[:, None]
            + self.intercept
            - self.mean @ weight
        )
        return 1.0 / (1.0 + np.exp(-logit))

    @classmethod
    def read(cls, npz) -> tuple[Probe, np.ndarray, list[str]]:
        """The probe, the item vectors it reads and their item ids, from judge_probe's .npz (a path or
        file object)."""
        with np.load(npz, allow_pickle=False) as f:
            return cls.from_arrays(f)

    @classmethod
    def from_arrays(cls, f) -> tuple[Probe, np.ndarray, list[str]]:
        """The same from the arrays of an opened .npz."""
        return (
            cls(f["mean"], f["scale"], f["coef"], float(f["intercept"][0])),
            f["vectors"],
            [str(i) for i in f["item_ids"]],
        )
