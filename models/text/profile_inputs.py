"""What the LLM profiles are written from (profiles.py writes them): one JSON-able dict per item
from dim_items' text, one per user from their TRAIN rows only. Untrusted text in them is sanitized
here, so injected instructions never reach the LLM.

    inputs = item_profile_inputs(dim_items)
    inputs = user_profile_inputs(train_rows, dim_items)      # TRAIN interactions only
"""

import pandas as pd

from models.text.sanitize import sanitize_fields


def _clean(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    return str(value)


def _split(value) -> list[str]:
    text = _clean(value)
    return [part for part in text.split("|") if part] if text else []


def item_profile_inputs(dim_items: pd.DataFrame) -> list[tuple[str, dict]]:
    """One JSON-able dict per item from dim_items' text (review snippets there are train-only)."""
    inputs = []
    for row in dim_items.itertuples(index=False):
        data = {"title": _clean(row.title) or f"item {row.item_id}"}
        if _clean(row.release_year):
            data["year"] = int(row.release_year)
        for key, values in (("genres", _split(row.genres)), ("tags", _split(row.tags)[:10])):
            if values:
                data[key] = values
        if _clean(row.description):
            data["description"] = _clean(row.description)[:400]
        if _clean(row.review_snippets):
            data["reviews"] = _clean(row.review_snippets)[:600]
        inputs.append(
            (str(row.item_id), sanitize_fields(data)[0])
        )  # injected instructions never reach the LLM
    return inputs


def user_profile_inputs(
    train: pd.DataFrame, dim_items: pd.DataFrame, per_side: int = 8
) -> list[tuple[str, dict]]:
    """One dict per user from their TRAIN rows only (columns user_id, item_id, rating, event_ts)."""
    items = dim_items.set_index("item_id")
    titles = items["title"].to_dict()
    genres = items["genres"].to_dict()
    inputs = []
    for user_id, rows in train.sort_values("event_ts", kind="stable").groupby("user_id", sort=True):
        data: dict = {"ratings": int(len(rows))}
        rated = rows.dropna(subset=["rating"])

        def name(item_id):
            return _clean(titles.get(item_id)) or f"item {item_id}"

        if len(rated):
            data["mean_rating"] = round(float(rated["rating"].mean()), 2)
            loved = rated[rated["rating"] >= 4].tail(per_side)  # the most recent favourites
            disliked = rated[rated["rating"] <= 2].tail(per_side)
            data["liked"] = [name(i) for i in loved["item_id"]]
            data["disliked"] = [name(i) for i in disliked["item_id"]]
        else:  # implicit feedback: what they interacted with lately
            data["recent"] = [name(i) for i in rows["item_id"].tail(per_side)]
        genre_counts = pd.Series(
            [g for i in rows["item_id"] for g in _split(genres.get(i))]
        ).value_counts()
        if len(genre_counts):
            data["top_genres"] = {
                g: round(c / len(rows), 2) for g, c in genre_counts.head(5).items()
            }
        data["active"] = f"{rows['event_ts'].min():%Y-%m} to {rows['event_ts'].max():%Y-%m}"
        inputs.append((str(user_id), sanitize_fields(data)[0]))  # item titles in it are untrusted
    return inputs
