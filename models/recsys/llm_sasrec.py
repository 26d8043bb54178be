"""LLM-SASRec: SASRec whose items are also described by language vectors.

Each item's embedding is its ID embedding plus a learned map of frozen text vectors (the
all-MiniLM embeddings of its title and/or LLM-written profile, from the `llm` group). AlphaRec
(Sheng et al., 2024) showed that language representations, mapped by a small network, carry
collaborative signal; here they enrich the IDs, which helps most for items with few interactions.
Optionally the user's profile vector, mapped the same way, is added to every position's state.
A film without train rows gets the ID row of its nearest trained film by text (cold_rows.py), so it
can rank where its ID knows nothing.

    model = LLMSASRec(LLMSASRecConfig(item_text="title"), item_text=vectors)   # [n_items, d]
    model.fit(data)
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.recsys.base import FitResult, Log
from models.recsys.cold_rows import fill_untrained_rows
from models.recsys.data import SplitData
from models.recsys.sasrec import SASRec, SASRecConfig, SASRecNet


@dataclass
class LLMSASRecConfig(SASRecConfig):
    # which item vectors (item_text_columns): title, profile, card, llm_card, or two with "+"
    item_text: str = "title+profile"
    text_map: str = "mlp"  # "linear" or "mlp" (two layers, as AlphaRec)
    use_user_profile: bool = False  # add the mapped user-profile vector to the sequence state
    cold_rows: bool = True  # an untrained film borrows a trained film's ID row (cold_rows.py)


class TextMap(nn.Module):
    def __init__(self, dim_in: int, hidden: int, kind: str):
        super().__init__()
        if kind not in ("linear", "mlp"):
            raise ValueError(f"text_map must be 'linear' or 'mlp', not {kind!r}")
        self.net = (
            nn.Linear(dim_in, hidden)
            if kind == "linear"
            else nn.Sequential(
                nn.Linear(dim_in, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class LLMSASRecNet(SASRecNet):
    def __init__(
        self,
        n_items: int,
        config: LLMSASRecConfig,
        item_text: torch.Tensor,
        user_text: torch.Tensor | None,
    ):
        super().__init__(n_items, config)
        if item_text.shape[0] != n_items:
            raise ValueError(f"item text vectors: {item_text.shape[0]} rows for {n_items} items")
        self.register_buffer("item_text", item_text.float())
        self.item_map = TextMap(item_text.shape[1], config.hidden, config.text_map)
        self.user_map = None
        if config.use_user_profile:
            self.register_buffer("user_text", user_text.float())
            self.user_map = TextMap(user_text.shape[1], config.hidden, config.text_map)

    def item_table(self) -> torch.Tensor:
        items = self.item_emb.weight[1:] + self.item_map(self.item_text)
        return torch.cat([self.item_emb.weight[:1], items])  # row 0 stays the (zero) padding row

    def encode(self, seqs, users=None, table=None):
        hidden = super().encode(seqs, users, table)
        if self.user_map is not None and users is not None:
            known = (users >= 0).unsqueeze(
                -1
            )  # -1: a user the model was not trained on, no profile term
            hidden = hidden + (self.user_map(self.user_text[users.clamp(min=0)]) * known).unsqueeze(
                1
            )
        return hidden


class LLMSASRec(SASRec):
    name = "llm_sasrec"
    Config = LLMSASRecConfig

    def __init__(
        self,
        config: LLMSASRecConfig,
        item_text: np.ndarray | None = None,
        user_text: np.ndarray | None = None,
        neighbour_text: np.ndarray | None = None,
    ):
        super().__init__(config)
        self.item_text, self.user_text = item_text, user_text
        # what an untrained film's nearest trained films are found by; None: item_text. The LLM's
        # card vectors here, under a title + profile map, lend worse rows (docs/recommenders.md)
        self.neighbour_text = neighbour_text
        if config.use_user_profile and user_text is None and item_text is not None:
            raise ValueError("llm_sasrec: use_user_profile=True needs user profile vectors")

    def build_net(self, n_items: int) -> LLMSASRecNet:
        if self.item_text is None:
            raise ValueError("llm_sasrec needs item text vectors (run item_text_embeddings first)")
        user_text = None if self.user_text is None else torch.as_tensor(self.user_text)
        return LLMSASRecNet(n_items, self.config, torch.as_tensor(self.item_text), user_text)

    def fit(self, data: SplitData, log: Log = print) -> FitResult:
        result = super().fit(data, log)
        if self.config.cold_rows:
            result.cold_rows = fill_untrained_rows(
                self, data, self.config.seed, log, self.neighbour_text
            )
        return result

    def state(self) -> dict:
        return {
            **super().state(),
            "item_text_dim": self.net.item_text.shape[1],
            "user_text_shape": tuple(self.net.user_text.shape)
            if self.net.user_map is not None
            else None,
        }

    @classmethod
    def unfitted(cls, config: LLMSASRecConfig, saved: dict) -> "LLMSASRec":
        # the vectors themselves are buffers in the weights; zeros of the right shape get overwritten
        item_text = np.zeros((saved["n_items"], saved["item_text_dim"]), np.float32)
        user_shape = saved["user_text_shape"]
        return cls(config, item_text, np.zeros(user_shape, np.float32) if user_shape else None)


def text_vectors(
    ids: np.ndarray, frame, id_column: str, columns: list[str]
) -> tuple[np.ndarray, int]:
    """Rows of `frame` (id + list-valued vector columns) aligned to `ids`, columns concatenated and
    each part L2-normalized; ids without a vector get zeros. Returns the matrix and how many lacked one."""
    lookup = frame.set_index(id_column)
    parts = []
    for column in columns:
        # llm_card_embedding is there only where the LLM gives hidden states
        if column not in lookup.columns:
            raise ValueError(
                f"the vectors have no {column} column (they have {list(lookup.columns)})"
            )
        known = lookup[column].dropna()
        dim = len(known.iloc[0]) if len(known) else 0
        matrix = np.zeros((len(ids), dim), np.float32)
        present = np.isin(ids, known.index)
        if present.any():
            rows = np.stack(known.loc[ids[present]].to_numpy()).astype(np.float32)
            matrix[present] = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
        parts.append(matrix)
    missing = int((~np.isin(ids, lookup.index)).sum())
    return np.concatenate(parts, axis=1), missing


def item_text_columns(item_text: str) -> list[str]:
    """The embedding columns behind an `item_text` choice (LLMSASRecConfig.item_text)."""
    choices = {
        "title": ["title_embedding"],
        "profile": ["profile_embedding"],
        "title+profile": ["title_embedding", "profile_embedding"],
        "card": ["card_embedding"],
        "card+profile": ["card_embedding", "profile_embedding"],
        "llm_card": ["llm_card_embedding"],  # the LLM's hidden states of the card
        "card+llm_card": ["card_embedding", "llm_card_embedding"],
    }
    if item_text not in choices:
        raise ValueError(f"item_text must be one of {sorted(choices)}, not {item_text!r}")
    return choices[item_text]
