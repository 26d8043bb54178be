"""Top-k recommendations from a saved recommender, and the MLflow pyfunc that wraps it.

    recommender = SavedRecommender.load(path)
    recommender.recommend(["1", "2"], k=10)     # user_id, item_id, rank, score; seen items excluded

    model = mlflow.pyfunc.load_model("models:/reclake-recommender@champion")
    model.predict(pd.DataFrame({"user_id": ["1"]}), params={"k": 10})

Users unknown to the model get no rows (a cold-start policy is the caller's choice).
"""

from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from models.evaluation import rank_top_k
from models.recsys.base import load_recommender
from models.recsys.data import seen_mask

OUTPUT_COLUMNS = ["user_id", "item_id", "rank", "score"]


@dataclass
class SavedRecommender:
    model: object
    users: np.ndarray
    items: np.ndarray
    histories: list[np.ndarray]

    @classmethod
    def load(cls, path: Path, device: str | None = None) -> "SavedRecommender":
        model, saved = load_recommender(Path(path), device)
        return cls(model, np.asarray(saved["users"], dtype=object), np.asarray(saved["items"], dtype=object),
                   [np.asarray(h, dtype=np.int64) for h in saved["histories"]])

    @property
    def name(self) -> str:
        return self.model.name

    @torch.no_grad()
    def recommend(self, user_ids, k: int = 10, batch_size: int = 256) -> pd.DataFrame:
        index = pd.Series(np.arange(len(self.users)), index=self.users)
        known = index.reindex(pd.Index([str(u) for u in user_ids])).dropna().astype(np.int64).to_numpy()
        frames = []
        for start in range(0, len(known), batch_size):
            users = known[start:start + batch_size]
            histories = [self.histories[u] for u in users]
            scores = self.model.score_all(users, histories).float()
            seen = seen_mask(histories, len(self.items), scores.device)
            top = rank_top_k(scores, seen, min(k, len(self.items)))
            top_scores = torch.gather(scores.masked_fill(seen, float("-inf")), 1, top)
            top, top_scores = top.cpu().numpy(), top_scores.cpu().numpy()
            keep = np.isfinite(top_scores)  # fewer unseen items than k
            frames.append(pd.DataFrame({
                "user_id": np.repeat(self.users[users], top.shape[1])[keep.ravel()],
                "item_id": self.items[top][keep],
                "rank": np.tile(np.arange(1, top.shape[1] + 1), len(users))[keep.ravel()],
                "score": top_scores[keep].astype(np.float64),
            }))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS)
        return out.astype({"user_id": str, "item_id": str, "rank": np.int64, "score": np.float64})


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow's view of a SavedRecommender: a DataFrame of user_id in, ranked items out."""

    def load_context(self, context):
        self.recommender = SavedRecommender.load(context.artifacts["recommender"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        k = int((params or {}).get("k", 10))
        return self.recommender.recommend(model_input["user_id"].astype(str).tolist(), k=k)
