"""Judge plots: score distributions per role, and the ROC of held-out items against random ones."""

from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.core.ui import plt, save_chart


def score_distributions(pointwise: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(1, 5, 41)
    for role in ("champion", "baseline", "heldout", "random"):
        scores = pointwise.loc[pointwise["role"] == role, "score"]
        if len(scores):
            ax.hist(scores, bins=bins, alpha=0.5, density=True, label=f"{role} (mean {scores.mean():.2f})")
    ax.set_xlabel("judge's expected rating (1-5)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("LLM judge scores by item role")
    return save_chart(fig, path)


def roc(pointwise: pd.DataFrame, area: float, path: Path) -> Path:
    positive = np.sort(pointwise.loc[pointwise["role"] == "heldout", "score"].to_numpy())
    negative = pointwise.loc[pointwise["role"] == "random", "score"].to_numpy()
    thresholds = np.unique(np.concatenate([positive, negative]))[::-1]
    tpr = [0.0] + [float((positive >= t).mean()) for t in thresholds]
    fpr = [0.0] + [float((negative >= t).mean()) for t in thresholds]
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, color="tab:blue", label=f"judge, AUC {area:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="gray", label="chance")
    ax.set_xlabel("random unseen items scored above t")
    ax.set_ylabel("held-out items scored above t")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("held-out vs random")
    return save_chart(fig, path)
