"""PNG plots for MLflow and Dagster: learning curves, the classic models' grid, the two-stage ranker's
feature gains, the model comparison."""

from pathlib import Path

from models.recsys.base import FitResult
from orchestration.core.ui import plt, save_chart


def learning_curve(model_name: str, fit: FitResult, path: Path) -> Path:
    """Train loss and valid NDCG@10 per epoch (or valid NDCG@10 per grid value for classic models)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if fit.trials:
        key = next(k for k in fit.trials[0] if k != "valid_ndcg@10")
        xs = [t[key] for t in fit.trials]
        ax.plot(range(len(xs)), [t["valid_ndcg@10"] for t in fit.trials], "o-", color="tab:blue")
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_xlabel(key)
        ax.set_ylabel("valid NDCG@10")
    else:
        epochs = [e["epoch"] for e in fit.epochs]
        ax.plot(
            epochs,
            [e["valid_ndcg@10"] for e in fit.epochs],
            "o-",
            ms=3,
            color="tab:blue",
            label="valid NDCG@10",
        )
        ax.axvline(fit.best_epoch, color="gray", ls=":", label=f"best epoch {fit.best_epoch}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("valid NDCG@10")
        losses = [e["train_loss"] for e in fit.epochs]
        if any(loss == loss for loss in losses):  # not all NaN
            twin = ax.twinx()
            twin.plot(epochs, losses, "-", color="tab:orange", label="train loss")
            twin.set_ylabel("train loss (cross-entropy)")
            twin.legend(loc="lower right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{model_name}: best valid NDCG@10 {fit.best_valid_ndcg10:.4f}")
    return save_chart(fig, path)


def model_comparison(rows: list[dict], path: Path) -> Path:
    """Grouped bars: NDCG@10, Recall@10, MRR@10 on test, and valid NDCG@10, per model."""
    metrics = ["valid_ndcg_at_10", "test_ndcg_at_10", "test_recall_at_10", "test_mrr_at_10"]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        xs = [m + i * width for m in range(len(metrics))]
        bars = ax.bar(
            xs, [row[m] for m in metrics], width, label=f"{row['model_name']} v{row['version']}"
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=6)
    ax.set_xticks(
        [m + width * (len(rows) - 1) / 2 for m in range(len(metrics))],
        ["valid NDCG@10", "test NDCG@10", "test Recall@10", "test MRR@10"],
    )
    ax.legend(fontsize=8)
    ax.set_title("reclake recommenders (leave-one-out, full ranking)")
    return save_chart(fig, path)


def feature_gains(gains, path: Path) -> Path:
    """The two-stage ranker's total split gain per feature (a pandas Series), largest on top."""
    gains = gains.sort_values()
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(gains) + 1.2))
    ax.barh(gains.index, gains.to_numpy(), color="tab:blue")
    ax.set_xlabel("total split gain (LightGBM)")
    ax.set_title("two_stage: what the ranker reads")
    return save_chart(fig, path)


def protocols(report: dict, path: Path) -> Path:
    """Test NDCG@10 per model under leave-one-out and the timeline (mean over seeds, with the 95%
    interval over users), side by side, with Kendall tau between the two orders."""
    models = report["timeline_order"]
    rows = [report["models"][m] for m in models]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    xs = range(len(models))
    loo = [r["loo_ndcg_at_10"] or 0.0 for r in rows]
    timeline = [r["timeline_ndcg_at_10"] for r in rows]
    errors = [
        [t - r["timeline_ci"][0] for t, r in zip(timeline, rows)],
        [r["timeline_ci"][1] - t for t, r in zip(timeline, rows)],
    ]
    ax.bar([x - 0.2 for x in xs], loo, 0.4, label="leave-one-out", color="tab:gray")
    ax.bar(
        [x + 0.2 for x in xs],
        timeline,
        0.4,
        yerr=errors,
        capsize=3,
        label="timeline",
        color="tab:blue",
    )
    ax.set_xticks(list(xs), models)
    ax.set_ylabel("test NDCG@10")
    ax.legend(fontsize=8)
    ax.set_title(f"two protocols (Kendall tau {report['kendall_tau']})")
    return save_chart(fig, path)


def cold_items(report: dict, path: Path) -> Path:
    """Cold-item HR@10 per model (mean over seeds, 95% interval over users), best first."""
    models = report["order"]
    rows = [report["models"][m] for m in models]
    hits = [r["hit_at_10"] for r in rows]
    errors = [
        [h - r["hit_ci"][0] for h, r in zip(hits, rows)],
        [r["hit_ci"][1] - h for h, r in zip(hits, rows)],
    ]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(range(len(models)), hits, yerr=errors, capsize=3, color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("HR@10 on films never trained on")
    ax.set_title(f"cold items ({rows[0]['test_users'] if rows else 0} users, all films candidates)")
    return save_chart(fig, path)


def cold_users(report: dict, path: Path) -> Path:
    """Cold-user HR@10 per model against the events the user has had (95% intervals over users)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sizes = sorted(report["context_sizes"], key=int)
    for name in report["context_sizes"][sizes[0]]["models"]:
        rows = [report["context_sizes"][s]["models"][name] for s in sizes]
        hits = [r["hit_at_10"] for r in rows]
        errors = [[h - r["hit_ci"][0] for h, r in zip(hits, rows)]]
        errors.append([r["hit_ci"][1] - h for h, r in zip(hits, rows)])
        ax.errorbar([int(s) for s in sizes], hits, yerr=errors, marker="o", capsize=3, label=name)
    ax.set_xticks([int(s) for s in sizes])
    ax.set_xlabel("events the user has had (the history the model sees)")
    ax.set_ylabel("HR@10 on the next film")
    ax.legend(fontsize=7)
    ax.set_title("cold users: people no model trained on")
    return save_chart(fig, path)
