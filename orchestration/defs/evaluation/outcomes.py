"""Group `evaluation`, in the daily loop: the lists of day D judged by what their users did on D.

served_outcomes[D]  runs with D's landed events (in `daily_update[D]`): every user with an event on
                    D that was new to them, against the champion's list served on D (role served)
                    and each shadow list of D (role shadow): hit@10, NDCG@10, recall@10 and hit@10
                    over items first seen within 14 days; rolling 7- and 28-day windows with
                    bootstrap intervals over user-days, shadows paired with the served list
                    -> lake/outcomes/date=D/per_user.parquet, summary.json, hit_at_10.png,
                    an MLflow run per day
The logic is models/evaluation/outcomes.py.
"""

from datetime import date as Date

import dagster as dg
import pandas as pd
import pyarrow as pa

from models import registry
from models.evaluation.outcomes import (
    day_targets,
    new_items_on,
    read_per_user,
    score_lists,
    window_summary,
)
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.partitions import daily_asset, next_day
from orchestration.core.paths import Lake
from orchestration.core.resources import LakeResource
from orchestration.core.ui import plt, png_markdown, save_chart
from orchestration.core.warehouse import query

WINDOWS = (7, 28)


def day_lists(paths: Lake, day: str) -> pd.DataFrame:
    """The served list of `day` (role served) and its shadow lists (role shadow), one frame."""
    frames = []
    served = paths.recommendations(day)
    if served.exists():
        frames.append(pd.read_parquet(served).assign(role="served"))
    for path in sorted(paths.shadow_lists(day).glob("*/*.parquet")):
        frames.append(pd.read_parquet(path).assign(role="shadow"))
    columns = ["user_id", "item_id", "rank", "model_name", "model_version", "role"]
    return (
        pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    )


def day_events(paths: Lake, day: str) -> tuple[pd.DataFrame, set[str]]:
    """D's (user, item) targets new to their user, and the items first seen in the 14 days before D."""
    start, end = Date.fromisoformat(day), Date.fromisoformat(next_day(day))
    events = query(
        paths.warehouse,
        "select user_id, item_id from main.fct_interactions where event_ts >= ? and event_ts < ?",
        [start, end],
    )
    before = query(
        paths.warehouse,
        "select distinct f.user_id, f.item_id from main.fct_interactions f "
        "where f.event_ts < ? and f.user_id in (select user_id from main.fct_interactions "
        "where event_ts >= ? and event_ts < ?)",
        [start, start, end],
    )
    first_seen = query(
        paths.warehouse,
        "select item_id, min(event_ts) as first_ts from main.fct_interactions "
        "where event_ts < ? group by item_id",
        [start],
    ).set_index("item_id")["first_ts"]
    return day_targets(events, before), new_items_on(first_seen, day)


def hit_rate_plot(history: pd.DataFrame, path, days: int = 7):
    """Each model's hit@10 over the days, as a rolling mean over `days` days of user-days."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, rows in history.groupby("model_name", sort=True):
        daily = rows.groupby("date")["hit_at_10"].agg(["sum", "count"])
        rolling = daily.rolling(days, min_periods=1).sum()
        style = "-" if (rows["role"] == "served").any() else "--"
        ax.plot(pd.to_datetime(daily.index), rolling["sum"] / rolling["count"], style, label=name)
    ax.set_ylabel(f"next-day hit@10 (rolling {days} d)")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("served (solid) and shadow (dashed) lists, by the next day's events")
    fig.autofmt_xdate()
    return save_chart(fig, path)


def new_item_share(lists: pd.DataFrame, new_items: set[str]) -> float | None:
    """Share of served lists (top 10) that hold an item first seen within 14 days."""
    served = lists[(lists["role"] == "served") & (lists["rank"] <= 10)]
    if served.empty:
        return None
    holds = served.assign(new=served["item_id"].isin(new_items)).groupby("user_id")["new"].any()
    return round(float(holds.mean()), 4)


def day_summary(day: str, per_user: pd.DataFrame, history: pd.DataFrame, share) -> dict:
    windows = {n: window_summary(history, day, n) for n in WINDOWS} if len(history) else {}
    by_model = {}
    for (name, version, role), rows in per_user.groupby(
        ["model_name", "model_version", "role"], sort=True
    ):
        by_model[name] = {
            "version": version,
            "role": role,
            "n_users": len(rows),
            "hit_at_10": round(float(rows["hit_at_10"].mean()), 4),
            "ndcg_at_10": round(float(rows["ndcg_at_10"].mean()), 4),
            "recall_at_10": round(float(rows["recall_at_10"].mean()), 4),
            "ci_7d": windows.get(7, {}).get(name, {}).get("hit_at_10_ci"),
            **{f"window_{n}d": windows[n].get(name) for n in windows},
        }
    return {
        "date": day,
        "n_users": int(per_user["user_id"].nunique()),
        "served_lists_with_new_item": share,
        "by_model": by_model,
    }


def score_day(context, paths: Lake, day: str) -> dict | None:
    """Score one day's lists and write its files and MLflow run; None when nothing was served or
    nothing happened that day."""
    lists = day_lists(paths, day)
    if lists.empty:
        return None
    targets, new_items = day_events(paths, day)
    if targets.empty:  # the day's events have not landed (yet): nothing to score them by
        context.log.info(f"{day}: lists were served, but no event of that day is in the warehouse")
        return None
    per_user = score_lists(lists, targets, new_items)
    out = paths.outcomes(day)
    table = pa.Table.from_pandas(per_user, preserve_index=False)
    write_parquet_atomic(table, out / "per_user.parquet")
    history = read_per_user(paths.outcomes, day, max(WINDOWS))
    summary = day_summary(day, per_user, history, new_item_share(lists, new_items))
    write_json_atomic(summary, out / "summary.json")
    plot = hit_rate_plot(history, out / "hit_at_10.png") if len(history) else None
    metrics = {
        f"{kind}/{name}": entry[kind]
        for name, entry in summary["by_model"].items()
        for kind in ("hit_at_10", "ndcg_at_10")
    }
    summary["mlflow_run_id"] = registry.log_report_run(
        registry.connect(paths.mlflow_dir),
        f"outcomes {day}",
        {"reclake.report": "served_outcomes", "reclake.date": day},
        metrics=metrics,
        dicts={"summary.json": summary},
        artifacts={"plots": [plot]} if plot else None,
    )
    summary["plot"] = plot
    hits = ", ".join(f"{n} {e['hit_at_10']:.3f}" for n, e in summary["by_model"].items())
    context.log.info(f"{day}: {summary['n_users']} users with new events; hit@10 {hits}")
    return summary


@daily_asset(
    key="served_outcomes",
    group_name="evaluation",
    code_version="1",
    deps=["batch_recommendations", "shadow_recommendations", "fct_interactions"],
    kinds={"parquet", "mlflow"},
    description="The lists served on D (and the shadow lists of D) scored by D's events: "
    "hit@10, NDCG@10, recall@10, new-item hit@10, rolling 7/28-day windows with intervals.",
)
def served_outcomes(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    scored = {}
    for day in context.partition_keys:
        if (summary := score_day(context, lake.paths, day)) is not None:
            scored[day] = summary
    if not scored:
        context.log.info("no list was served on these days; nothing to score")
        return dg.MaterializeResult(metadata={"scored_days": 0})
    last = scored[max(scored)]
    plot = last.pop("plot")
    return dg.MaterializeResult(
        metadata={
            "scored_days": len(scored),
            "date": last["date"],
            "n_users": last["n_users"],
            "hit_at_10": dg.MetadataValue.json(
                {n: e["hit_at_10"] for n, e in last["by_model"].items()}
            ),
            "served_lists_with_new_item": last["served_lists_with_new_item"],
            "mlflow_run_id": last["mlflow_run_id"],
            "path": dg.MetadataValue.path(str(lake.paths.outcomes(last["date"]))),
            **({"hit_at_10_over_time": png_markdown(plot)} if plot else {}),
        }
    )
