"""EASE (Steck, 2019): a closed-form item-item linear model, a strong classic baseline.

    B = -P / diag(P),  diag(B) = 0,  where P = (X^T X + lambda * I)^-1
    score(user) = x_user @ B   (x_user: the user's history as a 0/1 row)

The regularization lambda is chosen on VALID NDCG@10 from a grid (the trials are recorded);
the Gram matrix is computed once and each lambda costs one matrix inverse.

    model = EASE(EASEConfig(lambdas=(100.0, 500.0))); result = model.fit(data)
"""

from dataclasses import dataclass

import numpy as np
import torch

from models.common.device import pick_device
from models.recsys.base import FitResult, Log, Timer
from models.recsys.data import SplitData, require_min_size, seen_mask
from models.recsys.metrics import evaluate


@dataclass
class EASEConfig:
    lambdas: tuple[float, ...] = (10.0, 25.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
    max_items: int = 40_000  # the item-item matrix is dense: n_items^2 floats
    seed: int = 0
    device: str = "auto"


class EASE:
    name = "ease"
    Config = EASEConfig

    def __init__(self, config: EASEConfig):
        self.config = config
        self.device = pick_device(config.device)
        self.weights: torch.Tensor | None = None  # B, [n_items, n_items]
        self.reg = 0.0

    def fit(self, data: SplitData, log: Log = print) -> FitResult:
        require_min_size(data, self.name, min_users=1, min_items=2)
        if data.n_items > self.config.max_items:
            raise ValueError(
                f"ease: {data.n_items} items exceed max_items={self.config.max_items} "
                f"(the dense item-item matrix would need {data.n_items**2 * 4 / 2**30:.1f} GiB)"
            )
        timer = Timer()
        x = seen_mask(data.train, data.n_items, self.device).float()
        gram = (x.T @ x).double()
        result = FitResult()
        best = None
        for reg in self.config.lambdas:
            self.weights, self.reg = self._solve(gram, reg), reg
            valid = evaluate(self, data, "valid").metrics["ndcg@10"]
            result.trials.append({"lambda": reg, "valid_ndcg@10": valid})
            log(f"ease: lambda={reg:g} valid NDCG@10 {valid:.4f}")
            if best is None or valid > best[0]:
                best = (valid, reg, self.weights)
        result.best_valid_ndcg10, self.reg, self.weights = best
        result.epochs = [
            {"epoch": 1, "train_loss": float("nan"), "valid_ndcg@10": best[0], "seconds": timer()}
        ]
        result.best_epoch, result.seconds = 1, timer()
        return result

    @staticmethod
    def _solve(gram: torch.Tensor, reg: float) -> torch.Tensor:
        p = torch.linalg.inv(
            gram + reg * torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
        )
        b = -p / torch.diagonal(p)
        b.fill_diagonal_(0.0)
        return b.float()

    def score_all(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        return seen_mask(histories, len(self.weights), self.device).float() @ self.weights

    def state(self) -> dict:
        return {"weights": self.weights.cpu(), "reg": self.reg}

    @classmethod
    def from_state(cls, config: EASEConfig, saved: dict) -> "EASE":
        model = cls(config)
        model.weights, model.reg = saved["weights"].to(model.device), saved["reg"]
        return model
