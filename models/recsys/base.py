"""What every recommender shares: the fit record, seeding, and saving/loading one file.

A recommender is a small class with
    name                                  'popularity', 'ease', 'sasrec', 'llm_sasrec'
    config                                a dataclass (the hyper-parameters, seed and device)
    fit(data, log) -> FitResult           trains on TRAIN, selects on VALID (never on test)
    score_all(users, histories) -> Tensor [len(users), n_items] scores for every item
    state() / from_state(state)           everything needed to score again, in one torch file

save_recommender writes that file; catalog.load_recommender reads it back into the right class.
"""

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

Log = Callable[[str], None]


@dataclass
class FitResult:
    epochs: list[dict] = field(
        default_factory=list
    )  # per epoch: epoch, train_loss, valid_ndcg@10, seconds
    trials: list[dict] = field(
        default_factory=list
    )  # hyper-parameter grid tried on valid (classic models)
    cold_rows: list[dict] = field(
        default_factory=list
    )  # untrained films' rows chosen (cold_rows.py)
    best_epoch: int = 0
    best_valid_ndcg10: float = 0.0
    seconds: float = 0.0

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(len(self.epochs), 1)


def seed_everything(seed: int) -> np.random.Generator:
    """Same seed, same data and device -> same model (CPU is bit-exact; CUDA up to kernel choice)."""
    random.seed(seed)
    torch.manual_seed(seed)
    # Multi-threaded CPU scatter-adds (the embedding gradient) are not bit-exact run to run: use the
    # deterministic kernels; warn_only because a few CUDA ops have none.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start


def save_recommender(model, data, path: Path) -> Path:
    """One torch file: kind, config, id vocabularies, each user's full history (what serving scores
    from and masks) and the model's tensors. Written to a temp name, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(
        {
            "kind": model.name,
            "config": asdict(model.config),
            "users": list(data.users),
            "items": list(data.items),
            "histories": data.full_histories(),
            **model.state(),
        },
        tmp,
    )
    tmp.replace(path)
    return path
