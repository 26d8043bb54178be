"""Most-popular items (by TRAIN interaction count): the floor every model must beat.

model = Popularity(PopularityConfig()); model.fit(data); model.score_all(users, histories)
"""

from dataclasses import dataclass

import numpy as np
import torch

from models.common.device import pick_device
from models.recsys.base import FitResult, Log, Timer
from models.recsys.data import SplitData, require_min_size
from models.recsys.metrics import evaluate


@dataclass
class PopularityConfig:
    seed: int = 0  # nothing random; kept so every model records one
    device: str = "auto"


class Popularity:
    name = "popularity"
    Config = PopularityConfig

    def __init__(self, config: PopularityConfig):
        self.config = config
        self.device = pick_device(config.device)
        self.counts: torch.Tensor | None = None

    def fit(self, data: SplitData, log: Log = print) -> FitResult:
        require_min_size(data, self.name, min_users=1, min_items=1)
        timer = Timer()
        self.counts = torch.as_tensor(data.train_counts(), dtype=torch.float32, device=self.device)
        valid = evaluate(self, data, "valid").metrics["ndcg@10"]
        log(f"popularity: {int(self.counts.sum())} train interactions, valid NDCG@10 {valid:.4f}")
        return FitResult(
            epochs=[
                {"epoch": 1, "train_loss": float("nan"), "valid_ndcg@10": valid, "seconds": timer()}
            ],
            best_epoch=1,
            best_valid_ndcg10=valid,
            seconds=timer(),
        )

    def score_all(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return self.counts.expand(len(users), -1)

    def state(self) -> dict:
        return {"counts": self.counts.cpu()}

    @classmethod
    def from_state(cls, config: PopularityConfig, saved: dict) -> "Popularity":
        model = cls(config)
        model.counts = saved["counts"].to(model.device)
        return model
