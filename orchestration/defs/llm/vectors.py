"""Sentence vectors in the daily loop: a text encoded on an earlier day is not encoded again.

A day changes a few profiles, but the embedding assets read every profile: without this, each day
would re-encode all 1,682 ML-100K items (about 20 s here). The vectors are kept by the text's
sha256 in cache/text_vectors.parquet under the data home. Outside the daily loop every run encodes
afresh, as before (a batch's padding can move a vector in its last float bits).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from models.text.embeddings import DIMENSIONS, encode_texts
from orchestration.core.files import write_parquet_atomic
from orchestration.core.resources import LakeResource


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
