"""The one interface every LLM backend implements.

- ``generate``: a batch of chat conversations -> one completion each (greedy, bounded length).
- ``score_choices``: a batch of conversations -> for each, a probability over fixed answer strings
  (e.g. "1".."5"), read from the next-token distribution — for ratings and judge verdicts, so
  no free text has to be parsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass(frozen=True)
class Generation:
    text: str
    new_tokens: int
    error: str | None = None  # set (and text empty) when the backend failed for this conversation


class LLMBackend(Protocol):
    backend: str  # "embedded", "hf", "openai"
    model: str  # what the cache key and profiles record

    def generate(
        self, conversations: list[list[Message]], max_new_tokens: int
    ) -> list[Generation]: ...

    def score_choices(
        self, conversations: list[list[Message]], choices: list[str]
    ) -> list[dict[str, float]]: ...


def normalize(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:
        return {k: 1.0 / len(weights) for k in weights}
    return {k: v / total for k, v in weights.items()}


def choice_distribution(top_logprobs: list[dict], choices: list[str]) -> dict[str, float]:
    """P(each choice) from an OpenAI-style `top_logprobs` list of the first answer token (" 4" and
    "4" count as the same answer), normalized over the choices."""
    weights = {c: 0.0 for c in choices}
    for entry in top_logprobs:
        token = entry["token"].strip()
        if token in weights:
            weights[token] += math.exp(entry["logprob"])
    return normalize(weights)
