"""The cold-item protocol's report: what each model does with films no model trained on.

    runs = refit(builders, cold_data, seeds=(0, 1, 2))                  # refit.py
    report = cold_item_report(runs)          # HR@10 with intervals, ratios to sasrec and the retriever

`cold_item_splits` holds 15% of the films out of training entirely; each test user's held-out film is
the first cold one they met, ranked among all films. An ID-only model has nothing for such a film
(its row never trained): it is what a content-aware model must beat, and `content_retriever`
(text only) is what it must beat to show the IDs and the sequence add something.
"""

import numpy as np
import pandas as pd

from models.common.stats import paired_interval, ratio_interval
from models.evaluation.refit import RefitRun

REFERENCES = ("sasrec", "content_retriever")  # each model's HR@10 is also given as a ratio to these


def cold_item_report(runs: list[RefitRun], references: tuple[str, ...] = REFERENCES) -> dict:
    """Per model: test HR@10 and NDCG@10 as mean and std over seeds, a 95% interval over users (the
    per-user hit averaged over seeds), and the ratio of its HR@10 to each reference's on the same
    users with a paired bootstrap interval (None where the reference hits nothing)."""
    hits: dict[str, pd.Series] = {}
    by_model: dict[str, dict] = {}
    for name in dict.fromkeys(r.model_name for r in runs):
        mine = [r for r in runs if r.model_name == name]
        hit = np.array([r.per_user_hit.mean() for r in mine])
        hits[name] = pd.concat([r.per_user_hit for r in mine], axis=1).mean(axis=1)
        by_model[name] = {
            "hit_at_10": round(float(hit.mean()), 4),
            "hit_std": round(float(hit.std(ddof=1)) if len(hit) > 1 else 0.0, 4),
            "hit_ci": [round(b, 4) for b in paired_interval(hits[name].to_numpy(float))],
            "ndcg_at_10": round(float(np.mean([r.ndcg_at_10 for r in mine])), 4),
            "valid_ndcg_at_10": round(float(np.mean([r.valid_ndcg_at_10 for r in mine])), 4),
            "train_seconds": round(float(np.mean([r.seconds for r in mine])), 1),
            "seeds": [r.seed for r in mine],
            "test_users": len(hits[name]),
        }
    for name, row in by_model.items():
        for reference in references:
            if reference == name or reference not in hits:
                continue
            mine, theirs = hits[name].align(hits[reference], join="inner")
            ratio, interval = ratio_interval(mine.to_numpy(float), theirs.to_numpy(float))
            row[f"ratio_to_{reference}"] = None if ratio is None else round(ratio, 3)
            row[f"ratio_to_{reference}_ci"] = (
                None if interval is None else [round(b, 3) for b in interval]
            )
    order = sorted(by_model, key=lambda n: -by_model[n]["hit_at_10"])
    return {"models": by_model, "order": order, "best": order[0] if order else None}
