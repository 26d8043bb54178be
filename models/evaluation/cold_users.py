"""The cold-user protocol: people no model trained on, recommended to after their first 1, 3 and 5
events.

    datas = cold_user_data(frame, catalog)                # {1: SplitData, 3: ..., 5: ...}
    runs = refit_cold_users(builders, datas, seeds=(0,))  # {1: [RefitRun, ...], 3: ..., 5: ...}
    report = cold_user_report(runs)                       # per size: HR@10, intervals, ratios

`cold_user_splits` holds 15% of the users with 6+ events out of training; for each context size their
first events are the history a model sees (never fitted on) and the next one is the test. The models
train on everyone else once per seed (the train rows are the same for every size) and are tested at
each size. Every size's data shares one index space of users and items.
"""

from collections.abc import Callable

import numpy as np
import pandas as pd

from models.evaluation.cold_items import cold_item_report
from models.evaluation.refit import RefitRun, tested
from models.recsys.data import SplitData

CONTEXT_SIZES = (1, 3, 5)
REFERENCES = ("popularity", "sasrec")


def cold_user_data(frame: pd.DataFrame, catalog: np.ndarray) -> dict[int, SplitData]:
    """One SplitData per context size: other users' train and valid rows, and the cold users' first
    `size` events as their test history (the timeline's `context`, which no model fits on)."""
    warm = frame["context_size"].isna()
    datas = {
        size: SplitData.from_splits(
            frame[warm | (frame["context_size"] == size)], timeline=True, catalog=catalog
        )
        for size in CONTEXT_SIZES
    }
    first = datas[CONTEXT_SIZES[0]]
    for size, data in datas.items():
        if not (
            np.array_equal(data.users, first.users) and np.array_equal(data.items, first.items)
        ):
            raise ValueError(f"cold_user_splits: context size {size} has other users or items")
    return datas


def refit_cold_users(
    builders: dict[str, Callable[[int], object]],
    datas: dict[int, SplitData],
    seeds: tuple[int, ...],
    log: Callable[[str], None] = print,
) -> dict[int, list[RefitRun]]:
    """Each model fit once per seed (on the train rows every size shares), tested at every size."""
    fit_on = datas[min(datas)]
    runs: dict[int, list[RefitRun]] = {size: [] for size in datas}
    for name, build in builders.items():
        for seed in seeds:
            model = build(seed)
            fit = model.fit(fit_on, log=lambda _: None)
            for size, data in datas.items():
                run = tested(name, seed, model, fit, data, log, f"cold users @{size}")
                run.topk = run.topk.assign(context_size=size)  # the lists say which size they are
                runs[size].append(run)
    return runs


def cold_user_report(runs: dict[int, list[RefitRun]]) -> dict:
    """Per context size: each model's HR@10 with its interval over users and its ratio to
    popularity and SASRec on the same users (cold_item_report's figures)."""
    return {str(size): cold_item_report(sized, REFERENCES) for size, sized in runs.items()}
