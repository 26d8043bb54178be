"""Top-k recommendations from a saved recommender, and the MLflow pyfunc that wraps it.

    recommender = SavedRecommender.load(path)
    recommender.recommend(["1", "2"], k=10)     # user_id, item_id, rank, score; seen items excluded

    model = mlflow.pyfunc.load_model("models:/reclake-recommender@champion")
    model.predict(pd.DataFrame({"user_id": ["1"]}), params={"k": 10})

`recommend` serves the users and histories the model was saved with (users it does not know get
no rows); `recommend_histories` scores any histories, e.g. everything up to a batch date.
"""

import io
import os
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch

from models.recsys.catalog import load_recommender
from models.recsys.data import seen_mask

OUTPUT_COLUMNS = ["user_id", "item_id", "rank", "score"]


@dataclass
class SavedRecommender:
    model: object
    users: np.ndarray
    items: np.ndarray
    histories: list[np.ndarray]

    @classmethod
    def load(cls, path: Path | io.BytesIO, device: str | None = None) -> "SavedRecommender":
        model, saved = load_recommender(
            path if isinstance(path, io.BytesIO) else Path(path), device
        )
        return cls(
            model,
            np.asarray(saved["users"], dtype=object),
            np.asarray(saved["items"], dtype=object),
            [np.asarray(h, dtype=np.int64) for h in saved["histories"]],
        )

    def scoring_payload(self) -> bytes:
        """The model and its id vocabularies without the saved histories, as bytes: what Spark
        broadcasts to its executors, which score the histories they are given."""
        buffer = io.BytesIO()
        torch.save(
            {
                "kind": self.model.name,
                "config": asdict(self.model.config),
                "users": list(self.users),
                "items": list(self.items),
                "histories": [],
                **self.model.state(),
            },
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def from_payload(cls, payload: bytes, device: str | None = None) -> "SavedRecommender":
        return cls.load(io.BytesIO(payload), device)

    @property
    def name(self) -> str:
        return self.model.name

    @cached_property
    def user_index(self) -> pd.Series:
        """user_id -> the model's user index."""
        return pd.Series(np.arange(len(self.users)), index=self.users)

    @cached_property
    def item_index(self) -> pd.Series:
        """item_id -> the model's item index (reindex gives NaN for items it never saw)."""
        return pd.Series(np.arange(len(self.items)), index=self.items)

    def recommend(self, user_ids, k: int = 10, batch_size: int = 256) -> pd.DataFrame:
        """Top-k for users the model was trained on, from the histories it was saved with."""
        known = (
            self.user_index.reindex(pd.Index([str(u) for u in user_ids]))
            .dropna()
            .astype(np.int64)
            .to_numpy()
        )
        return self.recommend_histories(
            self.users[known], [self.histories[u] for u in known], k, batch_size
        )

    def recommend_histories(
        self, user_ids: np.ndarray, histories: list[np.ndarray], k: int = 10, batch_size: int = 256
    ) -> pd.DataFrame:
        frames = list(self.iter_recommendations(user_ids, histories, k, batch_size))
        out = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS)
        )
        return out.astype({"user_id": str, "item_id": str, "rank": np.int64, "score": np.float64})

    @torch.no_grad()
    def iter_recommendations(
        self,
        user_ids: np.ndarray,
        histories: list[np.ndarray],
        k: int = 10,
        batch_size: int = 256,
        candidates: np.ndarray | None = None,
    ):
        """Top-k unseen items for each user given their history (item indices, time order), one
        DataFrame per chunk of `batch_size` users: memory is bounded by the chunk, not the user
        count. Users the model was not trained on are scored from their history alone. Uses
        torch.topk (deterministic, but equal scores at the cut may order differently than the
        evaluation's stable full sort, which is too slow for large catalogs). `candidates`, a
        boolean mask over the model's items, leaves out the others (a night's lists hold only items
        seen by that night)."""
        model_users = (
            self.user_index.reindex(pd.Index(user_ids)).fillna(-1).astype(np.int64).to_numpy()
        )
        k = min(k, len(self.items))
        for start in range(0, len(user_ids), batch_size):
            users, chunk = (
                model_users[start : start + batch_size],
                histories[start : start + batch_size],
            )
            scores = self.model.score_all(users, chunk).float()
            seen = seen_mask(chunk, len(self.items), scores.device)
            if candidates is not None:
                seen |= ~torch.as_tensor(candidates, device=scores.device)[None, :]
            top_scores, top = torch.topk(scores.masked_fill(seen, float("-inf")), k, dim=1)
            top, top_scores = top.cpu().numpy(), top_scores.cpu().numpy()
            keep = np.isfinite(top_scores).ravel()  # fewer unseen items than k
            yield pd.DataFrame(
                {
                    "user_id": np.repeat(
                        np.asarray(user_ids[start : start + batch_size], dtype=object), k
                    )[keep],
                    "item_id": self.items[top].ravel()[keep],
                    "rank": np.tile(np.arange(1, k + 1), len(chunk))[keep],
                    "score": top_scores.ravel()[keep].astype(np.float64),
                }
            )


class RecommenderPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow's view of a SavedRecommender: a DataFrame of user_id in, ranked items out. A two_stage
    model reads its Feast stats from the online store (latest values, `online_stats`) unless the
    caller bound a lookup already (the nightly batch binds one as of its date)."""

    def load_context(self, context):
        self.recommender = SavedRecommender.load(context.artifacts["recommender"])

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", 10))
        model = self.recommender.model
        if getattr(model, "stats", False) is None and "stats" in model.config.groups:
            model.stats = online_stats(model.config.feature_service)
        return self.recommender.recommend(model_input["user_id"].astype(str).tolist(), k=k)


def online_stats(feature_service: str):
    """A lookup of a feature service's values in the Feast online store of the repo at
    $RECLAKE_FEATURE_REPO (its yaml reads $RECLAKE_HOME, as `feast serve` does): what a two_stage
    model served on its own (`mlflow models serve`) reads."""
    from feast import FeatureStore

    repo = os.environ.get("RECLAKE_FEATURE_REPO")
    if not repo:
        raise RuntimeError(
            "a two_stage model reads Feast stats per candidate: set RECLAKE_FEATURE_REPO to the "
            "project's feature_repo folder and RECLAKE_HOME to the data home"
        )
    store = FeatureStore(repo_path=repo)
    service = store.get_feature_service(feature_service)

    def lookup(user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
        rows = [{"user_id": str(u), "item_id": str(i)} for u, i in zip(user_ids, item_ids)]
        return store.get_online_features(
            features=service, entity_rows=rows, full_feature_names=True
        ).to_df()

    return lookup
