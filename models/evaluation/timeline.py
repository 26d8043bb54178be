"""The timeline protocol beside leave-one-out: the same models fit on `timeline_splits` (one global
cutoff, nothing after it seen), several seeds, and how the model order changes between protocols.

    runs = refit({"sasrec": build_sasrec, ...}, timeline_data, seeds=(0, 1, 2))   # refit.py
    report = compare_protocols(loo={"sasrec": 0.107, ...}, runs=runs)  # orders and Kendall tau

Leave-one-out leaks the future: a model trains on other users' later events and may recommend items
that did not exist at the test moment (Ji et al., TOIS 2023). The timeline protocol is what a
nightly deployment lives by; where the two orders disagree, trust the timeline one.
"""

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from models.common.stats import paired_interval
from models.evaluation.refit import RefitRun


def compare_protocols(loo: dict[str, float], runs: list[RefitRun]) -> dict:
    """Per model: its leave-one-out NDCG@10 (as given), its timeline NDCG@10 as mean and std over
    seeds with a 95% interval over users (per-user NDCG averaged over seeds); both orders, best
    first, and Kendall tau between them over the models in both."""
    by_model: dict[str, dict] = {}
    for name in dict.fromkeys(r.model_name for r in runs):
        mine = [r for r in runs if r.model_name == name]
        scores = np.array([r.ndcg_at_10 for r in mine])
        per_user = pd.concat([r.per_user_ndcg for r in mine], axis=1).mean(axis=1)
        by_model[name] = {
            "timeline_ndcg_at_10": round(float(scores.mean()), 4),
            "timeline_std": round(float(scores.std(ddof=1)) if len(scores) > 1 else 0.0, 4),
            "timeline_ci": [round(b, 4) for b in paired_interval(per_user.to_numpy(float))],
            "seeds": [r.seed for r in mine],
            "test_users": len(per_user),
            "loo_ndcg_at_10": loo.get(name),
        }
    both = [n for n in by_model if loo.get(n) is not None]
    timeline_order = sorted(by_model, key=lambda n: -by_model[n]["timeline_ndcg_at_10"])
    loo_order = sorted(both, key=lambda n: -loo[n])
    tau = None
    if len(both) >= 2:
        tau = kendalltau(
            [loo[n] for n in both], [by_model[n]["timeline_ndcg_at_10"] for n in both]
        ).statistic
    return {
        "models": by_model,
        "timeline_order": timeline_order,
        "loo_order": loo_order,
        "kendall_tau": None if tau is None or np.isnan(tau) else round(float(tau), 3),
    }
