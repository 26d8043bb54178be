"""Content retriever: a user's recent films in text space against every film's text vector.

The baseline for films no interaction ID knows (the cold-item protocol): it needs nothing but the
items' text vectors (the card's or the LLM profile's sentence vector), so a film that arrived today
ranks like one seen a thousand times. all-MiniLM vectors share a large common direction; the
catalog's mean is subtracted first (centering), so the dot product compares what is particular to
each film. How many recent films make the user (`last_n`) is chosen on valid, as EASE's lambda.

    model = ContentRetriever(ContentRetrieverConfig(), item_text=vectors)  # [n_items, d]
    model.fit(data); model.score_all(users, histories)
"""

from dataclasses import dataclass

import numpy as np
import torch

from models.common.device import pick_device
from models.recsys.base import FitResult, Log, Timer
from models.recsys.data import SplitData, mean_vectors, require_min_size
from models.recsys.metrics import evaluate


@dataclass
class ContentRetrieverConfig:
    last_n_grid: tuple[int, ...] = (1, 3, 5, 10, 20, 50)  # recent films a user is the mean of
    center: bool = True  # subtract the catalog's mean vector before comparing
    seed: int = 0  # nothing random; kept so every model records one
    device: str = "auto"


class ContentRetriever:
    name = "content_retriever"
    Config = ContentRetrieverConfig

    def __init__(self, config: ContentRetrieverConfig, item_text: np.ndarray | None = None):
        self.config = config
        self.device = pick_device(config.device)
        self.vectors = None if item_text is None else self._prepare(item_text)
        self.last_n = config.last_n_grid[0]

    def _prepare(self, item_text: np.ndarray) -> torch.Tensor:
        vectors = torch.as_tensor(np.asarray(item_text, np.float32), device=self.device)
        if self.config.center:
            vectors = vectors - vectors[vectors.norm(dim=1) > 0].mean(0)
        return torch.nn.functional.normalize(vectors, dim=1)

    def fit(self, data: SplitData, log: Log = print) -> FitResult:
        require_min_size(data, self.name, min_users=1, min_items=2)
        if self.vectors is None or len(self.vectors) != data.n_items:
            raise ValueError(
                f"content_retriever needs one text vector per item ({data.n_items}); run "
                "item_text_embeddings first"
            )
        timer, result, best = Timer(), FitResult(), None
        for last_n in self.config.last_n_grid:
            self.last_n = last_n
            valid = evaluate(self, data, "valid").metrics["ndcg@10"]
            result.trials.append({"last_n": last_n, "valid_ndcg@10": valid})
            log(f"content_retriever: last {last_n} films, valid NDCG@10 {valid:.4f}")
            if best is None or valid > best[0]:
                best = (valid, last_n)
        result.best_valid_ndcg10, self.last_n = best
        result.epochs = [
            {"epoch": 1, "train_loss": float("nan"), "valid_ndcg@10": best[0], "seconds": timer()}
        ]
        result.best_epoch, result.seconds = 1, timer()
        return result

    def score_all(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        # each user: the mean vector of their last `last_n` films (zeros for an empty history)
        recent = mean_vectors(self.vectors.cpu().numpy(), [h[-self.last_n :] for h in histories])
        return torch.as_tensor(recent, device=self.device) @ self.vectors.T

    def state(self) -> dict:
        return {"vectors": self.vectors.cpu(), "last_n": self.last_n}

    @classmethod
    def from_state(cls, config: ContentRetrieverConfig, saved: dict) -> "ContentRetriever":
        model = cls(config)
        model.vectors, model.last_n = saved["vectors"].to(model.device), saved["last_n"]
        return model
