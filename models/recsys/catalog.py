"""Every recommender by name: popularity (floor), EASE (classic CF), SASRec, LLM-SASRec."""

from models.recsys.ease import EASE
from models.recsys.llm_sasrec import LLMSASRec
from models.recsys.popularity import Popularity
from models.recsys.sasrec import SASRec

MODELS = {m.name: m for m in (Popularity, EASE, SASRec, LLMSASRec)}
