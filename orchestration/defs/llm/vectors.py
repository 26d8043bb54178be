"""Sentence vectors in the daily loop: a text encoded on an earlier day is not encoded again.

A day changes a few profiles, but the embedding assets read every profile: without this, each day
would re-encode all 1,682 ML-100K items (about 20 s here). The vectors are kept by the text's
sha256 in cache/text_vectors.parquet under the data home. Outside the daily loop every run encodes
afresh, as before (a batch's padding can move a vector in its last float bits).

card_readings reads the item cards with the LLM itself (its hidden states, as the tuned judge's
reader does), through the same cache: a card is read once per model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models.common.device import torch_threads
from models.evaluation.judge_cards import read_cards
from models.text.embeddings import DIMENSIONS, encode_texts
from orchestration.core.files import write_parquet_atomic
from orchestration.core.resources import LakeResource, LLMResource


def card_readings(lake: LakeResource, llm: LLMResource, cards: list[str], log) -> np.ndarray | None:
    """The LLM's unit-length hidden states of each card (models/evaluation/judge_cards.py), cached by
    card; None where the backend gives no hidden states (an OpenAI-style server)."""
    reader = llm.hidden_state_reader()
    if reader is None:
        log(f"the {llm.backend} backend gives no hidden states: items get no llm_card_embedding")
        return None
    backend = reader.load(lake.home_path, log)
    with torch_threads(reader.torch_threads):
        return read_cards(backend, cards, reader.cache_dir(lake.home_path), log=log)


def text_encoder(lake: LakeResource) -> Callable[[list[str]], np.ndarray]:
    if not lake.daily:
        return encode_texts
    path = lake.paths.cache / "text_vectors.parquet"

    def encode(texts: list[str]) -> np.ndarray:
        known: dict[str, np.ndarray] = {}
        if path.exists():
            table = pq.read_table(path)
            vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
            known = dict(zip(table.column("sha256").to_pylist(), vectors))
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
        if todo:
            fresh = encode_texts([t for _, t in todo])
            known.update(zip([k for k, _ in todo], fresh))
            write_parquet_atomic(
                pa.table(
                    {
                        "sha256": list(known),
                        "vector": pa.array(
                            [v.tolist() for v in known.values()], pa.list_(pa.float32())
                        ),
                    }
                ),
                path,
            )
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32)

    return encode
