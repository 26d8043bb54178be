"""How each recommender asset builds its model from the training resource: (model, input versions).
The recommender assets (assets.py), the warm start and the timeline protocol (timeline.py) share them.
"""

import pandas as pd

from models.common.files import sha256_file
from models.recsys.catalog import EASE, ContentRetriever, LLMSASRec, Popularity, SASRec
from models.recsys.llm_sasrec import item_text_columns, text_vectors


def _popularity(training, lake, data):
    return Popularity(Popularity.Config(seed=training.seed, device=training.device)), {}


def _ease(training, lake, data):
    return EASE(EASE.Config(seed=training.seed, device=training.device)), {}


def _sasrec(training, lake, data):
    return SASRec(SASRec.Config(**training.overrides())), {}


def _llm_sasrec(training, lake, data):
    config = LLMSASRec.Config(
        **training.overrides(),
        item_text=training.llm_item_text,
        use_user_profile=training.llm_use_user_profile,
    )
    item_text, versions = _item_vectors(lake, data, config.item_text)
    user_text = None
    if config.use_user_profile:
        users_path = lake.paths.embeddings("users")
        user_text, _ = text_vectors(
            data.users, pd.read_parquet(users_path), "user_id", ["profile_embedding"]
        )
        versions["user_profile_embeddings_sha256"] = sha256_file(users_path)
    return LLMSASRec(config, item_text, user_text), versions


def _content_retriever(training, lake, data):
    item_text, versions = _item_vectors(lake, data, training.content_item_text)
    config = ContentRetriever.Config(seed=training.seed, device=training.device)
    return ContentRetriever(config, item_text), versions


def _item_vectors(lake, data, item_text: str):
    """The items' text vectors (`item_text`: title, profile, card or two with "+") aligned to the
    split's items, and the input versions a model registers with them."""
    items_path = lake.paths.embeddings("items")
    vectors, missing = text_vectors(
        data.items, pd.read_parquet(items_path), "item_id", item_text_columns(item_text)
    )
    return vectors, {
        "item_text_embeddings_sha256": sha256_file(items_path),
        "items_without_text": str(missing),
    }


BUILDERS = {
    "popularity": _popularity,
    "content_retriever": _content_retriever,
    "ease": _ease,
    "sasrec": _sasrec,
    "llm_sasrec": _llm_sasrec,
}
