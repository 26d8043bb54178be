"""`reclake recommend`: one user's list, the way an application asks for it.

    answer = recommend(home, "1", k=10)                   # today's list: Feast's online store
    answer = recommend(home, "1", date="2026-12-01")      # that night's batch partition in the lake
    print(render(answer))                                 # or json.dumps(answer) (`--json`)

A user the online store does not hold (e.g. one who arrived after the last nightly run) is scored
now by the champion, from their history in the warehouse, exactly as the nightly batch scores
everyone. The answer says which path gave it (`source`) and which model version made the list, and
marks each film that is new on the list's night: first seen within the 14 days before it, or
never seen at all (the next-day outcomes' definition, models/evaluation/outcomes.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models import registry
from models.evaluation.outcomes import NEW_ITEM_DAYS, new_items_on
from orchestration.core.feast import bind_ranking_stats, feature_store
from orchestration.core.paths import Lake
from orchestration.core.warehouse import query, user_history

ONLINE = "online store"
PARTITION = "batch partition"
SCORED_NOW = "champion, scored now"


class RecommendError(RuntimeError):
    pass


def _answer(
    user_id: str,
    source: str,
    items: list[str],
    scores: list[float],
    model_name: str,
    model_version: str,
    partition_date: str | None,
    catalog: pd.DataFrame,
) -> dict:
    titles = catalog["title"].to_dict()
    # the night the list is for: its partition's date, or (scored now) the day after the last event
    last = catalog["first_seen"].max()
    night = (
        partition_date
        or (
            (last + timedelta(days=1)).date() if pd.notna(last) else datetime.now(UTC).date()
        ).isoformat()
    )
    new = new_items_on(catalog["first_seen"].dropna(), night) | set(
        catalog.index[catalog["first_seen"].isna()]
    )
    return {
        "user_id": user_id,
        "source": source,
        "model_name": model_name,
        "model_version": str(model_version),
        "partition_date": partition_date,
        "items": [
            {
                "rank": r,
                "item_id": i,
                "title": titles.get(i),
                "score": round(float(s), 4),
                "new": i in new,
            }
            for r, (i, s) in enumerate(zip(items, scores), start=1)
        ],
    }


def _catalog(home: Path) -> pd.DataFrame:
    """Each film's title and first event (NaT: never seen), by item_id."""
    return query(
        Lake(home).warehouse,
        "select i.item_id, i.title, f.first_seen from main.dim_items i left join ("
        "select item_id, min(event_ts) as first_seen from main.fct_interactions group by item_id"
        ") f on i.item_id = f.item_id",
    ).set_index("item_id")


def from_online_store(
    home: Path, user_id: str, k: int, engine: str, catalog: pd.DataFrame
) -> dict | None:
    row = (
        feature_store(home, engine)
        .get_online_features(
            features=[
                f"user_recommendations:{f}"
                for f in ("item_ids", "scores", "model_name", "model_version", "partition_date")
            ],
            entity_rows=[{"user_id": user_id}],
        )
        .to_dict()
    )
    if not row["item_ids"] or row["item_ids"][0] is None:
        return None
    return _answer(
        user_id,
        ONLINE,
        list(row["item_ids"][0])[:k],
        list(row["scores"][0])[:k],
        row["model_name"][0],
        row["model_version"][0],
        row["partition_date"][0],
        catalog,
    )


def from_partition(
    home: Path, user_id: str, k: int, date: str, catalog: pd.DataFrame
) -> dict | None:
    path = Lake(home).recommendations(date)
    if not path.exists():
        raise RecommendError(
            f"no batch partition for {date} ({path}); materialize batch_recommendations for that date"
        )
    frame = pd.read_parquet(path, filters=[("user_id", "=", user_id)]).sort_values("rank").head(k)
    if frame.empty:
        return None
    return _answer(
        user_id,
        PARTITION,
        frame["item_id"].tolist(),
        frame["score"].tolist(),
        frame["model_name"].iloc[0],
        frame["model_version"].iloc[0],
        date,
        catalog,
    )


def scored_by_champion(
    home: Path, user_id: str, k: int, engine: str, catalog: pd.DataFrame
) -> dict:
    """The champion's list for this user from everything the warehouse holds of them, now."""
    try:
        champion = registry.load_champion(registry.connect(Lake(home).mlflow_dir))
    except registry.NoChampionError as err:
        raise RecommendError(str(err)) from None
    recommender = champion.recommender
    history = user_history(Lake(home).warehouse, user_id)
    if not history:
        raise RecommendError(
            f"user {user_id!r} has no list in the online store and no interactions in the warehouse"
        )
    known = recommender.item_index.reindex(history).dropna().astype(np.int64).to_numpy()
    bind_ranking_stats(
        recommender.model, home, engine, datetime.now(UTC)
    )  # two_stage: the latest stats
    frame = recommender.recommend_histories(np.array([user_id], dtype=object), [known], k)
    return _answer(
        user_id,
        SCORED_NOW,
        frame["item_id"].tolist(),
        frame["score"].tolist(),
        champion.model_name,
        champion.version,
        None,
        catalog,
    )


def recommend(
    home: Path, user_id: str, k: int = 10, date: str | None = None, engine: str = "duckdb"
) -> dict:
    catalog = _catalog(home)
    if date is not None:
        answer = from_partition(home, user_id, k, date, catalog)
        if answer is None:
            raise RecommendError(f"user {user_id!r} has no list in the {date} partition")
        return answer
    return from_online_store(home, user_id, k, engine, catalog) or scored_by_champion(
        home, user_id, k, engine, catalog
    )


def render(answer: dict) -> str:
    where = {
        ONLINE: f"from Feast's online store (partition {answer['partition_date']})",
        PARTITION: f"from the batch partition {answer['partition_date']}",
        SCORED_NOW: "scored now by the champion (the online store holds no list for this user)",
    }[answer["source"]]
    lines = [
        f"user {answer['user_id']}: {answer['model_name']} v{answer['model_version']}, {where}"
    ]
    if any(item["new"] for item in answer["items"]):
        lines[0] += f" (new: a film first seen in the {NEW_ITEM_DAYS} days before the list's night)"
    lines += [
        f"  {item['rank']:>3}. {item['title'] or item['item_id']}  (item {item['item_id']}, "
        f"score {item['score']:.4f}{', new' if item['new'] else ''})"
        for item in answer["items"]
    ]
    return "\n".join(lines)
