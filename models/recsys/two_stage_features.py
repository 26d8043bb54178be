"""The two-stage ranker's inputs (two_stage.py): a base model's top-N candidates per user, their
labels (the held-out item at the candidates' stage), and one feature row per (user, candidate) by
feature group (FEATURE_GROUPS; LLM_GROUPS are the ones read from LLM output).

    valid = candidates(base, data, "valid", n=50)              # the base model's top-N, train histories
    X = feature_frame(valid, data.histories(valid.users, "valid"), sources)   # a row per (user, candidate)
    y = labels(valid, data)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.recsys.data import SplitData, mean_vectors
from models.recsys.metrics import top_unseen

STATS = ("n_interactions", "mean_rating", "rating_std", "days_since_first", "days_since_previous")
FEATURE_GROUPS = {
    "base": ["base_score", "base_rank"],
    "stats": [f"{side}_stats__{name}" for side in ("user", "item") for name in STATS],
    "text": ["history_text_sim", "recent_text_sim"],  # LLM item profiles (their MiniLM vectors)
    "user_profile": ["user_profile_sim"],  # the LLM user profile's vector vs the item's
    "judge": ["judge_score"],  # the tuned judge's raw P(relevant) (trained on train rows only)
}
LLM_GROUPS = ("text", "user_profile", "judge")


@dataclass
class Candidates:
    stage: str
    users: np.ndarray  # user indices, one per row
    items: np.ndarray  # [users, N] item indices, the base model's order
    scores: np.ndarray  # [users, N] the base model's scores

    @property
    def group_sizes(self) -> np.ndarray:
        return np.full(len(self.users), self.items.shape[1])


@dataclass
class FeatureSources:
    """What the features are computed from; a group whose source is missing is an error (leave the
    group out of the config instead), never a column of NaNs."""

    # Feast rows aligned with the candidate rows: user_stats__*, item_stats__*
    stats: pd.DataFrame | None = None
    item_vectors: np.ndarray | None = None  # [n_items, d] unit vectors of the LLM item profiles
    user_vectors: np.ndarray | None = None  # [n_users, d] unit vectors of the LLM user profiles
    # (histories, candidate items [users, N]) -> P(relevant) [users, N]
    judge: Callable[[list[np.ndarray], np.ndarray], np.ndarray] | None = None


# (user ids, item ids), one pair a candidate row -> those rows' FEATURE_GROUPS["stats"] columns
StatsLookup = Callable[[np.ndarray, np.ndarray], pd.DataFrame]


def candidates(model, data: SplitData, stage: str, n: int, batch_size: int = 256) -> Candidates:
    """The base model's top-n unseen items for every user with a held-out item at `stage`."""
    users, items, scores, unseen = top_unseen(model, data, stage, k=n, batch_size=batch_size)
    if (unseen < n).any():  # also when the catalogue itself has fewer than n items
        short = int(np.argmin(unseen))
        raise ValueError(
            f"user {data.users[users[short]]} has {unseen[short]} unseen items at {stage}, "
            f"fewer than the n={n} candidates the second stage re-ranks"
        )
    return Candidates(stage, users, items, scores)


def labels(cands: Candidates, data: SplitData) -> np.ndarray:
    """1 where the candidate is the user's held-out item at the candidates' stage."""
    return (cands.items == data.target(cands.stage)[cands.users][:, None]).astype(np.int32).ravel()


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0)


def _cosine_to_candidates(
    user_vectors: np.ndarray, item_vectors: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """cos(user row b, item items[b, j]) for every candidate, flattened [users * N]; 0 for a zero vector."""
    return np.einsum("bnd,bd->bn", _unit(item_vectors)[items], _unit(user_vectors)).ravel()


def feature_frame(
    cands: Candidates,
    histories: list[np.ndarray],
    sources: FeatureSources,
    groups: tuple[str, ...] = tuple(FEATURE_GROUPS),
    recent: int = 5,
) -> pd.DataFrame:
    """One row per (user, candidate), users in candidate order, candidates in the base model's order;
    `histories` are what each user had seen when the candidates were drawn; `recent_text_sim`
    compares the item with the last `recent` items of the history."""
    n_users, n = cands.items.shape
    frame = pd.DataFrame({"user": np.repeat(cands.users, n), "item": cands.items.ravel()})
    if "base" in groups:
        frame["base_score"] = cands.scores.ravel()
        frame["base_rank"] = np.tile(np.arange(n), n_users)
    if "stats" in groups:
        if sources.stats is None or len(sources.stats) != len(frame):
            raise ValueError(
                f"stats features: expected {len(frame)} rows aligned with the candidates, got "
                f"{None if sources.stats is None else len(sources.stats)}"
            )
        for column in FEATURE_GROUPS["stats"]:
            frame[column] = sources.stats[column].to_numpy(dtype=float)
    if "text" in groups:
        vectors = _require(sources.item_vectors, "text", "item profile vectors")
        frame["history_text_sim"] = _cosine_to_candidates(
            mean_vectors(vectors, histories), vectors, cands.items
        )
        recent_items = [h[-recent:] for h in histories]
        frame["recent_text_sim"] = _cosine_to_candidates(
            mean_vectors(vectors, recent_items), vectors, cands.items
        )
    if "user_profile" in groups:
        users = _require(sources.user_vectors, "user_profile", "user profile vectors")
        items = _require(sources.item_vectors, "user_profile", "item profile vectors")
        known = cands.users >= 0  # a user the model was not fitted with has no profile vector
        sim = _cosine_to_candidates(users[np.where(known, cands.users, 0)], items, cands.items)
        frame["user_profile_sim"] = np.where(np.repeat(known, n), sim, np.nan)
    if "judge" in groups:
        judge = _require(sources.judge, "judge", "a tuned judge")
        frame["judge_score"] = judge(histories, cands.items).ravel()
    return frame


def _require(value, group: str, what: str):
    if value is None:
        raise ValueError(
            f"feature group {group!r} needs {what}; leave the group out of TwoStageConfig.groups instead"
        )
    return value


def feature_columns(groups: tuple[str, ...]) -> list[str]:
    return [column for group in groups for column in FEATURE_GROUPS[group]]
