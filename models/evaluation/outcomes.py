"""Next-day outcomes: every list served (or shadow-scored) for day D, scored against what its user
did on D. Plain functions over DataFrames; the asset is orchestration/defs/evaluation/outcomes.py.

    per_user = score_lists(lists, events, new_items, k=10)      # one row per (user, model)
    summary = window_summary(history_of_per_user, last_day="1998-04-20", days=7)

A user counts on day D when they have an event on D with an item that was not already in their
history (a list cannot hold those). Targets are those items; a hit is one of them in the top 10.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models.common.stats import paired_interval, ratio_interval

K = 10
PER_USER_COLUMNS = [
    "user_id",
    "model_name",
    "model_version",
    "role",
    "n_events",
    "hit_at_10",
    "ndcg_at_10",
    "recall_at_10",
    "new_item_hit_at_10",
]
NEW_ITEM_DAYS = 14  # an item first seen within this many days before D counts as new on D
# the gate reads the outcomes of the last GATE_WINDOW_DAYS days once GATE_MIN_DAYS of them are scored
GATE_WINDOW_DAYS, GATE_MIN_DAYS = 28, 14
METRICS = ("hit_at_10", "ndcg_at_10", "recall_at_10", "new_item_hit_at_10")


def day_targets(events: pd.DataFrame, history_pairs: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id) of day D that are new to their user: `events` are D's interactions,
    `history_pairs` the (user_id, item_id) pairs before D."""
    pairs = events[["user_id", "item_id"]].drop_duplicates()
    seen = pairs.merge(history_pairs.drop_duplicates(), how="left", indicator=True)
    return seen.loc[seen["_merge"] == "left_only", ["user_id", "item_id"]].reset_index(drop=True)


def score_lists(
    lists: pd.DataFrame, targets: pd.DataFrame, new_items: set[str], k: int = K
) -> pd.DataFrame:
    """One row per (user with targets, model) that has a list: hit@k, NDCG@k (binary relevance,
    ideal DCG over min(targets, k)), recall@k (hits / targets) and hit@k over new items only
    (NaN when the user's targets hold no new item). `lists`: user_id, item_id, rank, model_name,
    model_version, role."""
    if targets.empty or lists.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in PER_USER_COLUMNS})
    top = lists[lists["rank"] <= k]
    top = top[top["user_id"].isin(set(targets["user_id"]))]
    hits = top.merge(targets, on=["user_id", "item_id"], how="left", indicator=True)
    hits["target"] = hits.pop("_merge") == "both"
    hits["gain"] = np.where(hits["target"], 1.0 / np.log2(hits["rank"] + 1.0), 0.0)
    hits["new_hit"] = hits["target"] & hits["item_id"].isin(new_items)
    keys = ["user_id", "model_name", "model_version", "role"]
    per_user = (
        hits.groupby(keys, sort=True)
        .agg(hits=("target", "sum"), dcg=("gain", "sum"), new_hits=("new_hit", "sum"))
        .reset_index()
    )
    n_targets = targets.groupby("user_id").size().rename("n_events")
    n_new = targets[targets["item_id"].isin(new_items)].groupby("user_id").size()
    per_user = per_user.join(n_targets, on="user_id")
    per_user["n_new"] = per_user["user_id"].map(n_new).fillna(0).astype(int)
    ideal = (
        per_user["n_events"].clip(upper=k).map(lambda n: (1.0 / np.log2(np.arange(n) + 2)).sum())
    )
    per_user["hit_at_10"] = (per_user["hits"] > 0).astype(float)
    per_user["ndcg_at_10"] = per_user["dcg"] / ideal
    per_user["recall_at_10"] = per_user["hits"] / per_user["n_events"]
    per_user["new_item_hit_at_10"] = np.where(
        per_user["n_new"] > 0, (per_user["new_hits"] > 0).astype(float), np.nan
    )
    return per_user[PER_USER_COLUMNS].astype({"n_events": np.int32})


def _dtype(column: str) -> str:
    return {"n_events": "int32"}.get(column, "float64" if column in METRICS else "object")


def new_items_on(first_seen: pd.Series, day: str, days: int = NEW_ITEM_DAYS) -> set[str]:
    """Items (index of `first_seen`: item_id -> first event date) first seen in the `days` days
    before `day`: the films a list could hold that most of its users never had a chance to rate."""
    end = date.fromisoformat(day)
    start = end - timedelta(days=days)
    seen = pd.to_datetime(first_seen).dt.date
    return set(first_seen.index[(seen >= start) & (seen < end)].astype(str))


def last_days(per_user: pd.DataFrame, last_day: str, days: int) -> pd.DataFrame:
    """The rows of the `days` days ending with `last_day` (`per_user` has a `date` column)."""
    first = (date.fromisoformat(last_day) - timedelta(days=days - 1)).isoformat()
    return per_user[(per_user["date"] >= first) & (per_user["date"] <= last_day)]


def window_summary(per_user: pd.DataFrame, last_day: str, days: int) -> dict[str, dict]:
    """Each model's mean metrics over the user-days of the `days` days ending with `last_day`,
    with the 95% interval of hit@10 over user-days and, for a shadow, its paired difference with
    the served list on the same user-days."""
    window = last_days(per_user, last_day, days)
    served = window[window["role"] == "served"].set_index(["date", "user_id"])["hit_at_10"]
    out: dict[str, dict] = {}
    for name, rows in window.groupby("model_name", sort=True):
        hit = rows["hit_at_10"].to_numpy(float)
        entry = {
            "days": int(rows["date"].nunique()),
            "user_days": len(rows),
            "hit_at_10": round(float(hit.mean()), 4),
            "ndcg_at_10": round(float(rows["ndcg_at_10"].mean()), 4),
            "hit_at_10_ci": [round(b, 4) for b in paired_interval(hit)],
            "new_item_hit_at_10": _mean_or_none(rows["new_item_hit_at_10"]),
        }
        if (rows["role"] != "served").all() and len(served):
            paired = rows.set_index(["date", "user_id"])["hit_at_10"].align(served, join="inner")
            difference = (paired[0] - paired[1]).to_numpy(float)
            if len(difference):
                entry["minus_served"] = round(float(difference.mean()), 4)
                entry["minus_served_ci"] = [round(b, 4) for b in paired_interval(difference)]
        out[str(name)] = entry
    return out


def _mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return round(float(values.mean()), 4) if len(values) else None


def against_baseline(
    per_user: pd.DataFrame, baseline: str, resamples: int = 2000, seed: int = 0
) -> dict[str, dict]:
    """Each model's hit@10 and NDCG@10 over the user-days it shares with `baseline`, and the ratio
    of its hit@10 to the baseline's with a 95% bootstrap interval (user-days resampled, paired)."""
    keys = ["date", "user_id"]
    base = per_user[per_user["model_name"] == baseline].set_index(keys)["hit_at_10"]
    out = {}
    for name, rows in per_user.groupby("model_name", sort=True):
        model, other = rows.set_index(keys)["hit_at_10"].align(base, join="inner")
        a, b = model.to_numpy(float), other.to_numpy(float)
        if not len(a):
            continue
        ratio, interval = ratio_interval(a, b, resamples=resamples, seed=seed)
        out[str(name)] = {
            "role": str(rows["role"].iloc[0]),
            "user_days": len(a),
            "hit_at_10": round(float(a.mean()), 4),
            "ndcg_at_10": round(float(rows["ndcg_at_10"].mean()), 4),
            "new_item_hit_at_10": _mean_or_none(rows["new_item_hit_at_10"]),
            f"ratio_to_{baseline}": None if ratio is None else round(ratio, 3),
            "ratio_ci": None if interval is None else [round(q, 3) for q in interval],
        }
    return out


def read_per_user(folder_of: Callable[[str], Path], last_day: str, days: int) -> pd.DataFrame:
    """Every per-user outcome written for the `days` days ending with `last_day` (a `date` column
    added); `folder_of(day)` is the day's folder (lake/outcomes/date=D)."""
    first = date.fromisoformat(last_day) - timedelta(days=days - 1)
    frames = []
    for offset in range(days):
        day = (first + timedelta(days=offset)).isoformat()
        if (path := folder_of(day) / "per_user.parquet").exists():
            frames.append(pd.read_parquet(path).assign(date=day))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def challenger_evidence(
    per_user: pd.DataFrame,
    last_day: str,
    window: int = GATE_WINDOW_DAYS,
    min_days: int = GATE_MIN_DAYS,
) -> dict | None:
    """What the gate reads: over the `window` days ending with `last_day`, each shadow model's
    next-day hit@10 minus the served list's on the same user-days, with its 95% interval. None
    while fewer than `min_days` days have scored served lists (the offline gate decides alone)."""
    if per_user.empty:
        return None
    recent = last_days(per_user, last_day, window)
    days = int(recent.loc[recent["role"] == "served", "date"].nunique())
    if days < min_days:
        return None
    summary = window_summary(per_user, last_day, window)
    return {
        "last_day": last_day,
        "days": days,
        "shadows": {
            name: {k: entry[k] for k in ("minus_served", "minus_served_ci", "user_days")}
            for name, entry in summary.items()
            if "minus_served_ci" in entry
        },
    }
