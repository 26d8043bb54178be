"""The evaluation protocol of DESIGN.md, the same for every model.

Leave-one-out by time, full ranking over all items the user has not interacted with before the
held-out one (train for valid; train + valid for test). Each user's items are ranked by score,
ties broken by item index (a stable sort), and the top 20 are kept: the metrics below are computed
from that list alone, so anyone holding the top-20 (lake/eval_topk) and `splits` can recompute them.

    NDCG@k   = 1 / log2(rank + 1) when the held-out item is at rank <= k, else 0
    Recall@k = 1 when rank <= k (one relevant item: Recall@k = HR@k)
    MRR@10   = 1 / rank when rank <= 10
Means over users with a held-out item.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from models.recsys.data import SplitData, seen_mask

TOP_K = 20
METRICS = ("ndcg@10", "ndcg@20", "recall@10", "recall@20", "mrr@10")


@dataclass
class Evaluation:
    stage: str
    metrics: dict[str, float]
    users: np.ndarray  # user indices evaluated
    topk: np.ndarray  # [len(users), TOP_K] item indices, best first

    def as_frame(self, data: SplitData) -> pd.DataFrame:
        """The lists by id, one row per (user, rank): user_id, item_id, rank (int32, from 1)."""
        width = self.topk.shape[1]
        return pd.DataFrame(
            {
                "user_id": data.users[self.users].repeat(width).astype(str),
                "item_id": data.items[self.topk.ravel()].astype(str),
                "rank": np.tile(np.arange(1, width + 1, dtype=np.int32), len(self.users)),
            }
        )


def hit_ranks(topk: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each row's 1-based rank of its held-out item in its list; inf when it is not in the list."""
    hits = topk == targets[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)


def ndcg_by_user(topk: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of each row: what the gate's paired comparison of two models resamples."""
    rank = hit_ranks(topk, targets)
    return np.where(rank <= k, 1.0 / np.log2(rank + 1), 0.0)


def metrics_from_topk(topk: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """The five metrics from ranked lists and one held-out item per row."""
    if len(targets) == 0:
        raise ValueError("no users with a held-out item to evaluate")
    rank = hit_ranks(topk, targets)  # 1-based; inf = not in the top 20
    out = {}
    for k in (10, 20):
        inside = rank <= k
        out[f"ndcg@{k}"] = float(np.where(inside, 1.0 / np.log2(rank + 1), 0.0).mean())
        out[f"recall@{k}"] = float(inside.mean())
    out["mrr@10"] = float(np.where(rank <= 10, 1.0 / rank, 0.0).mean())
    return {name: out[name] for name in METRICS}


def rank_top_k(scores: torch.Tensor, seen: torch.Tensor, k: int = TOP_K) -> torch.Tensor:
    """Top-k unseen items per row, ties broken by the lower item index."""
    masked = scores.float().masked_fill(seen, float("-inf"))
    return torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :k]


@torch.no_grad()
def top_unseen(
    model,
    data: SplitData,
    stage: str,
    k: int = TOP_K,
    batch_size: int = 256,
    users: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each user with a held-out item at `stage` (or each of `users`): the k best-scored items by
    `model.score_all(users, histories)` among those the user has not seen (ties: lower item index),
    the model's scores of them, and how many unseen items the user has (fewer than k: the list ends
    in seen items). Returns (users, items [users, k], scores [users, k], unseen counts)."""
    users = data.eval_users(stage) if users is None else users
    items, scores, unseen = [], [], []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        histories = data.histories(batch, stage)
        all_scores = model.score_all(batch, histories)
        seen = seen_mask(histories, data.n_items, all_scores.device)
        if (excluded := data.not_candidates(stage)) is not None:
            seen |= torch.as_tensor(excluded, device=seen.device)
        top = rank_top_k(all_scores, seen, k)
        items.append(top.cpu().numpy())
        scores.append(torch.gather(all_scores.float(), 1, top).cpu().numpy())
        unseen.append((~seen).sum(1).cpu().numpy())
    width = min(k, data.n_items)
    if not items:
        return (
            users,
            np.zeros((0, width), np.int64),
            np.zeros((0, width), np.float32),
            np.zeros(0, np.int64),
        )
    return users, np.concatenate(items), np.concatenate(scores), np.concatenate(unseen)


def evaluate(model, data: SplitData, stage: str, batch_size: int = 256) -> Evaluation:
    """Score every item for each evaluable user and keep the top 20 unseen (`top_unseen`)."""
    users, ranked, _, _ = top_unseen(model, data, stage, batch_size=batch_size)
    return Evaluation(stage, metrics_from_topk(ranked, data.target(stage)[users]), users, ranked)
