"""What the judge and the simulator read from the lake: the models' test-time lists and item texts."""

import numpy as np
import pandas as pd

from models import registry
from models.evaluation.judge_cards import item_card_texts, natural_title
from models.evaluation.nightly import ComparedLists
from models.text.sanitize import sanitize_fields
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import query


def eval_topk(lake: LakeResource, model_name: str, version: str, k: int) -> dict[str, list[str]]:
    """A model version's top-k per user on the test protocol (history up to the valid item)."""
    frame = pd.read_parquet(lake.paths.eval_topk(model_name, version))
    frame = frame[frame["rank"] <= k].sort_values(["user_id", "rank"])
    return frame.groupby("user_id")["item_id"].apply(list).to_dict()


def item_names_and_cards(lake: LakeResource) -> tuple[dict[str, str], dict[str, str]]:
    """Each item's sanitized title as people say it ("The Wizard of Oz") and the card an LLM reads
    of it ("The Wizard of Oz (1939). Genres: Adventure, Children's, Drama, Musical.")."""
    items = query(
        lake.warehouse_path, "select item_id, title, release_year, genres from main.dim_items"
    )
    titles = sanitize_fields([t or f"item {i}" for i, t in zip(items["item_id"], items["title"])])[
        0
    ]
    cards = item_card_texts(titles, items["release_year"].tolist(), items["genres"].tolist())
    return (
        dict(zip(items["item_id"], map(natural_title, titles))),
        dict(zip(items["item_id"], cards)),
    )


def _shorten(text: str, chars: int) -> str:
    """At most `chars` characters, cut at a word boundary."""
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " ..."


def item_cards(lake: LakeResource, profile_chars: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """What the judge reads of an item: alone (title, genres, the start of its LLM profile) and
    inside a list (title and genres). Title and genres are sanitized, so injected instructions never
    reach the judge; the profile is the LLM's own text, written from sanitized inputs."""
    items = query(lake.warehouse_path, "select item_id, title, genres from main.dim_items")
    profiles = pd.read_parquet(lake.paths.profiles("item"))
    items = items.merge(profiles[["item_id", "profile"]], on="item_id", how="left")
    cards, list_cards = {}, {}
    for row in items.itertuples():
        short = {"title": row.title or f"item {row.item_id}"}
        if isinstance(row.genres, str) and row.genres:
            short["genres"] = row.genres.replace("|", ", ")
        short = sanitize_fields(short)[0]
        list_cards[row.item_id] = short
        cards[row.item_id] = (
            {**short, "profile": _shorten(row.profile, profile_chars)}
            if isinstance(row.profile, str)
            else short
        )
    return cards, list_cards


def compared_lists(
    lake: LakeResource, client, data_version: str, baseline: str, k: int
) -> tuple[ComparedLists, dict[str, list[str]], dict[str, list[str]]]:
    """The champion's and the baseline's versions on this data version and their test-time top-k
    per user; LookupError when the baseline has no version on it."""
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS)
    versions = {row["model_name"]: row for row in registry.latest_versions(client, data_version)}
    if baseline not in versions:
        raise LookupError(
            f"no {baseline} version on data version {data_version}; "
            f"materialize {baseline}_model first"
        )
    champion_name, base = champion.tags["model_name"], versions[baseline]
    champion_test = client.get_run(champion.run_id).data.metrics.get("test_ndcg_at_10", np.nan)
    compared = ComparedLists(
        champion_name,
        str(champion.version),
        champion.run_id,
        baseline,
        base["version"],
        base["run_id"],
        champion_test - base["test_ndcg_at_10"],
    )
    return (
        compared,
        eval_topk(lake, champion_name, str(champion.version), k),
        eval_topk(lake, baseline, base["version"], k),
    )


def user_profiles(lake: LakeResource) -> dict[str, str]:
    """Each user's LLM profile (written from train history only)."""
    frame = pd.read_parquet(lake.paths.profiles("user"))
    return dict(zip(frame["user_id"], frame["profile"]))
