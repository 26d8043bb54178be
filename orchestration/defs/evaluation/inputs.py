"""What the judge and the simulator read from the lake: the models' test-time lists and item texts."""

import pandas as pd

from models.evaluation.judge_probe import item_card_texts, natural_title
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
