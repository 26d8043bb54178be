"""Every recommender by name: popularity (floor), the content retriever (text only), EASE (classic
CF), SASRec, LLM-SASRec, and the two-stage ranker over one of them; and loading
a saved one back into its class (base.py saves it; only this module knows every model)."""

from pathlib import Path

import torch

from models.recsys.content_retriever import ContentRetriever
from models.recsys.ease import EASE
from models.recsys.llm_sasrec import LLMSASRec
from models.recsys.popularity import Popularity
from models.recsys.sasrec import SASRec
from models.recsys.two_stage import TwoStage

MODELS = {m.name: m for m in (Popularity, ContentRetriever, EASE, SASRec, LLMSASRec, TwoStage)}


def load_recommender(path: Path, device: str | None = None) -> tuple[object, dict]:
    """The model and the saved dict (users, items, histories) it was written with."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    return from_saved(saved, device), saved


def from_saved(saved: dict, device: str | None = None):
    """A model from its saved dict; a model over another (two_stage) gets its base model loaded first."""
    cls = MODELS[saved["kind"]]
    config = cls.Config(**{**saved["config"], **({"device": device} if device else {})})
    if "base" in saved:
        saved = {**saved, "base": from_saved(saved["base"], device)}
    return cls.from_state(config, saved)
