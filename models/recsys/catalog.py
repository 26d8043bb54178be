"""Every recommender by name: popularity (floor), EASE (classic CF), SASRec, LLM-SASRec; and loading
a saved one back into its class (base.py saves it; only this module knows every model)."""

from pathlib import Path

import torch

from models.recsys.ease import EASE
from models.recsys.llm_sasrec import LLMSASRec
from models.recsys.popularity import Popularity
from models.recsys.sasrec import SASRec

MODELS = {m.name: m for m in (Popularity, EASE, SASRec, LLMSASRec)}


def load_recommender(path: Path, device: str | None = None) -> tuple[object, dict]:
    """The model and the saved dict (users, items, histories) it was written with."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    cls = MODELS[saved["kind"]]
    config = cls.Config(**{**saved["config"], **({"device": device} if device else {})})
    return cls.from_state(config, saved), saved
