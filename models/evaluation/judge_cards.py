"""What the tuned judge (judge_probe.py) reads of an item, and how it reads it.

    item_card_texts(titles, years, genres)  what the LLM reads of an item ("Fargo (1996). Genres: Crime, Drama.")
    read_cards(backend, cards, cache_dir)   their hidden-state vectors (mean over tokens, middle layer), cached;
                                         the judge joins the LLM's with a sentence encoder's (SentenceEncoder)
    natural_title(title)                 "Wizard of Oz, The" -> "The Wizard of Oz"

A card holds the item's own text only, never anything a recommender computed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ARTICLE_LAST = re.compile(r"^(.*), (The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El)$")


def natural_title(title: str) -> str:
    """ML-100K files titles library-style ("Wizard of Oz, The"); the LLM knows them as written."""
    match = ARTICLE_LAST.match(title)
    return f"{match.group(2)} {match.group(1)}" if match else title


def item_card_texts(titles: list[str], years: list, genres: list[str | None]) -> list[str]:
    """The card the LLM reads: the (sanitized) title, release year and genres, nothing a recommender
    computed. The year matters: it lifts the probe's valid AUC by 0.02-0.05 (docs/judge.md)."""
    cards = []
    for title, year, genre in zip(titles, years, genres):
        genre = genre.replace("|", ", ") if isinstance(genre, str) and genre else "unknown"
        dated = f"{natural_title(title)} ({int(year)})" if pd.notna(year) else natural_title(title)
        cards.append(f"{dated}. Genres: {genre}.")
    return cards


def read_cards(
    backend, cards: list[str], cache_dir: Path, depth: float = 0.5, log=print
) -> np.ndarray:
    """Unit-length hidden-state vectors of the cards (``backend.hidden_states``), cached per model,
    dtype and depth by the card's sha256, so a re-run or a new dataset version reads only new cards."""
    path = (
        Path(cache_dir)
        / "hidden_states"
        / f"{backend.model}-{str(backend.dtype).removeprefix('torch.')}-depth{depth}.npz"
    )
    keys = [hashlib.sha256(card.encode()).hexdigest()[:32] for card in cards]
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            known = dict(zip(f["keys"].tolist(), f["vectors"]))
    missing = sorted({k: card for k, card in zip(keys, cards) if k not in known}.items())
    log(
        f"{backend.model} reads {len(missing)} item cards ({len(set(keys)) - len(missing)} distinct ones cached)"
    )
    if missing:
        fresh = backend.hidden_states([card for _, card in missing], depth=depth)
        known.update(
            zip(
                [k for k, _ in missing],
                fresh / (np.linalg.norm(fresh, axis=1, keepdims=True) + 1e-12),
            )
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as out:  # temp + rename: a reader never sees half a cache
            np.savez(
                out, keys=np.array(list(known), dtype=str), vectors=np.stack(list(known.values()))
            )
        os.replace(tmp, path)
    return np.stack([known[k] for k in keys]).astype(np.float32)


class SentenceEncoder:
    """all-MiniLM-L6-v2 (models/text/embeddings.py) behind the reader interface of `read_cards`: its
    vectors beside the LLM's lift the probe's valid AUC from 0.814 (SmolLM2) / 0.820 (MiniLM) to
    0.865 (docs/judge.md)."""

    model, dtype = "all-MiniLM-L6-v2", "float32"

    def hidden_states(self, texts: list[str], depth: float = 0.5) -> np.ndarray:
        from models.text.embeddings import encode_texts

        return encode_texts(texts)
