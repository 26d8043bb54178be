"""Refit the recommenders on another protocol's split (timeline, cold items) and test them there:
several seeds, each model built by the same code and settings as its asset.

    runs = refit({"sasrec": build_sasrec, ...}, data, seeds=(0, 1, 2))   # build(seed) -> unfitted
    runs[0].per_user_ndcg, runs[0].per_user_hit, runs[0].topk            # by user_id; the lists
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.recsys.data import SplitData
from models.recsys.metrics import evaluate, hit_ranks, ndcg_by_user


@dataclass
class RefitRun:
    model_name: str
    seed: int
    ndcg_at_10: float
    valid_ndcg_at_10: float
    seconds: float
    per_user_ndcg: pd.Series  # test NDCG@10 by user_id
    topk: pd.DataFrame  # user_id, item_id, rank, seed
    per_user_hit: pd.Series | None = None  # test HR@10 (0/1) by user_id


def refit(
    builders: dict[str, Callable[[int], object]],
    data: SplitData,
    seeds: tuple[int, ...],
    log: Callable[[str], None] = print,
    label: str = "refit",
) -> list[RefitRun]:
    """Each model (`builders[name](seed)` returns it unfitted) fit on `data`'s train rows, selected
    on its valid rows and evaluated on its test rows, once per seed."""
    runs = []
    for name, build in builders.items():
        for seed in seeds:
            model = build(seed)
            fit = model.fit(data, log=lambda _: None)
            runs.append(tested(name, seed, model, fit, data, log, label))
    return runs


def tested(name: str, seed: int, model, fit, data: SplitData, log=print, label="refit") -> RefitRun:
    """A fitted model's run on `data`'s test rows (its valid NDCG@10 and time from `fit`)."""
    test = evaluate(model, data, "test")
    users = data.users[test.users]
    targets = data.target("test")[test.users]
    log(
        f"{label} {name} seed {seed}: test NDCG@10 {test.metrics['ndcg@10']:.4f}, "
        f"HR@10 {test.metrics['recall@10']:.4f} ({len(users)} users, {fit.seconds:.0f} s)"
    )
    return RefitRun(
        name,
        seed,
        test.metrics["ndcg@10"],
        fit.best_valid_ndcg10,
        fit.seconds,
        pd.Series(ndcg_by_user(test.topk, targets), index=users),
        test.as_frame(data).assign(seed=np.int32(seed)),
        pd.Series((hit_ranks(test.topk, targets) <= 10).astype(float), index=users),
    )
