"""Reading a protocol's top-k files back, as anyone recomputing its report would."""

from pathlib import Path

import numpy as np
import pandas as pd

from models.recsys.metrics import metrics_from_topk


def recompute(
    home: Path, folder: str, name: str, version, test: dict, **where
) -> tuple[pd.DataFrame, dict]:
    """The lists under lake/<folder>/model_name=<name>/model_version=<version>/ (the rows whose
    columns equal `where`'s values), and the metrics of their first seed against `test` (user_id ->
    held-out item_id); asserts one list per test user."""
    topk = pd.read_parquet(
        home / "lake" / folder / f"model_name={name}" / f"model_version={version}"
    )
    for column, value in where.items():
        topk = topk[topk[column] == value]
    one = topk[topk["seed"] == topk["seed"].min()].sort_values(["user_id", "rank"])
    ranked = one.groupby("user_id")["item_id"].apply(list)
    assert len(ranked) == len(test), (name, len(ranked), len(test))
    metrics = metrics_from_topk(
        np.array(ranked.tolist(), dtype=object),
        np.array([test[u] for u in ranked.index], dtype=object),
    )
    return topk, metrics
