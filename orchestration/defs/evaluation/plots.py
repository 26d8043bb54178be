"""Evaluator plots: the judge's score distributions per role, the ROC of held-out items against
random ones, the tuned judge's reliability curve, the simulator's pick rates, and either
evaluator's ladders (score per step of a known-order ladder beside the truth)."""

from pathlib import Path

import numpy as np
import pandas as pd

from orchestration.core.ui import plt, save_chart


def score_distributions(
    pointwise: pd.DataFrame,
    path: Path,
    label: str = "judge's expected rating (1-5)",
    value_range: tuple[float, float] = (1, 5),
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(*value_range, 41)
    for role in ("champion", "baseline", "heldout", "random"):
        scores = pointwise.loc[pointwise["role"] == role, "score"]
        if len(scores):
            ax.hist(
                scores,
                bins=bins,
                alpha=0.5,
                density=True,
                label=f"{role} (mean {scores.mean():.2f})",
            )
    ax.set_xlabel(label)
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


def reliability(calibrated: pd.DataFrame, raw: pd.DataFrame, path: Path) -> Path:
    """Predicted vs observed rate per bin (models.evaluation.judge_probe.reliability), before and after calibration."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect")
    for table, name, color in (
        (raw, "probe score", "tab:orange"),
        (calibrated, "calibrated", "tab:blue"),
    ):
        ax.plot(table["predicted"], table["observed"], "o-", color=color, label=name)
        for row in table.itertuples():
            ax.annotate(str(row.count), (row.predicted, row.observed), fontsize=6, color=color)
    ax.set_xlabel("predicted P(held-out item)")
    ax.set_ylabel("observed rate (valid split)")
    ax.legend(fontsize=8)
    ax.set_title("tuned judge reliability")
    return save_chart(fig, path)


def pick_rate_vs_ndcg(summary: dict, path: Path) -> Path:
    """Each model's simulated pick rate (95% interval) against its offline test NDCG@10."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, m in summary["pick_rate_by_model"].items():
        if m["offline_test_ndcg_at_10"] is None:
            continue
        low, high = m["pick_rate_ci"]
        ax.errorbar(
            m["offline_test_ndcg_at_10"],
            m["pick_rate"],
            # the interval's ends are rounded to 4 places: a tiny rate may sit just outside them
            yerr=[[max(0.0, m["pick_rate"] - low)], [max(0.0, high - m["pick_rate"])]],
            fmt="o",
            capsize=3,
        )
        ax.annotate(
            f"{name} v{m['version']}",
            (m["offline_test_ndcg_at_10"], m["pick_rate"]),
            fontsize=7,
            xytext=(4, 4),
            textcoords="offset points",
        )
    tau = summary["kendall_tau"]
    ax.set_xlabel("offline test NDCG@10 (all users)")
    ax.set_ylabel("simulated pick rate (P(watches one))")
    ax.set_title(
        f"simulated users vs offline truth: Kendall tau {'n/a' if tau is None else f'{tau:.2f}'}"
        + ("" if summary["trusted"] else " (advisory)"),
        fontsize=9,
    )
    return save_chart(fig, path)


def pick_rate_by_position(summary: dict, path: Path) -> Path:
    """P(position | a pick) on shuffled pages: flat at 1/K when the simulator reads no position."""
    positions = summary["pick_rate_by_position"]
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(positions), list(positions.values()), color="tab:blue")
    ax.axhline(
        summary["chance_pick_rate"], linestyle=":", color="gray", label="1/K (no position bias)"
    )
    ax.set_xlabel("position on the page")
    ax.set_ylabel("P(picked | a pick)")
    ax.legend(fontsize=8)
    ax.set_title("simulated picks by position (shuffled pages)", fontsize=9)
    return save_chart(fig, path)


def ladders(check: dict, path: Path, evaluator: str, score_label: str) -> Path:
    """Per ladder (the best list with its tail replaced by popular or random films), the
    evaluator's mean list score and the held-out events the lists hold, against the share replaced:
    an evaluator worth reading falls with the truth on both."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for (name, ladder), color in zip(check["ladders"].items(), ("tab:red", "tab:blue")):
        steps = np.arange(len(ladder["score_by_step"])) * 10
        left.plot(
            steps,
            ladder["score_by_step"],
            "o-",
            color=color,
            label=f"{name}, tau {ladder['tau']:+.2f}",
        )
        left.axhline(ladder["pure_score"], ls=":", color=color, label=f"{name} alone")
        right.plot(steps, ladder["truth_hits_by_step"], "o-", color=color, label=name)
    left.set_xlabel("% of the best list replaced")
    left.set_ylabel(score_label)
    left.set_title(f"{evaluator}: score per ladder step")
    left.legend(fontsize=7)
    right.set_xlabel("% of the best list replaced")
    right.set_ylabel("held-out events in the list (mean)")
    right.set_title("the truth: evaluator-split events")
    right.legend(fontsize=7)
    return save_chart(fig, path)
