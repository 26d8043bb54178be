"""A profile-aware LLM judge (after Spotify's "Profile-Aware LLM-as-a-Judge"), calibrated on truth.

The judge reads the user's natural-language profile (written from TRAIN history only) and item
profiles, and answers from its next-token distribution, never free text:

    pointwise(backend, user_profile, items)     expected rating over "1".."5" per item
    pairwise(backend, user_profile, a, b)       P(A better) asked in both orders; a verdict counts
                                                only when both orders agree
    auc(positive, negative)                     how often the held-out test item outscores a random
                                                unseen item (ties count half): the judge's calibration

    judge = Judge(backend); judge.pointwise(profile, [{"title": ..., "profile": ...}, ...])
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.llm.base import LLMBackend
from models.profiles import PromptTemplate

RATINGS = ["1", "2", "3", "4", "5"]
SIDES = ["A", "B"]


def expected_rating(distribution: dict[str, float]) -> float:
    """Mean of 1..5 under the judge's (normalized) probability of each digit."""
    return float(sum(int(choice) * p for choice, p in distribution.items()))


def auc(positive, negative) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann-Whitney U / (n*m))."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0 or len(negative) == 0:
        raise ValueError("auc needs at least one positive and one negative score")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def sample_users(activity: pd.Series, n: int, seed: int, strata: int = 4) -> list[str]:
    """`n` users, seeded, stratified by activity (train interaction count) quartiles, so light and
    heavy users are both judged; all users when there are fewer than `n`."""
    if len(activity) <= n:
        return sorted(activity.index.astype(str))
    rng = np.random.default_rng(seed)
    bins = pd.qcut(activity.rank(method="first"), q=min(strata, len(activity)), labels=False)
    chosen = []
    for stratum, size in zip(range(strata), np.diff(np.linspace(0, n, strata + 1).round().astype(int))):
        members = np.sort(activity.index[bins == stratum].astype(str))
        chosen.extend(rng.choice(members, size=min(size, len(members)), replace=False))
    return sorted(chosen)


@dataclass
class PairVerdict:
    p_first_order: float  # P(champion better) with the champion shown as A
    p_swapped: float  # P(champion better) with the champion shown as B
    verdict: str  # "champion", "baseline" or "inconsistent" (the orders disagree)


class Judge:
    def __init__(self, backend: LLMBackend):
        self.backend = backend
        self.pointwise_template = PromptTemplate.load("judge_pointwise_v1")
        self.pairwise_template = PromptTemplate.load("judge_pairwise_v1")

    @property
    def name(self) -> str:
        return f"{self.backend.backend}:{self.backend.model}"

    def pointwise(self, user_profile: str, items: list[dict]) -> list[float]:
        """Expected 1-5 rating of each item for this user."""
        conversations = [self.pointwise_template.messages({"user": user_profile, "item": item}) for item in items]
        return [expected_rating(d) for d in self.backend.score_choices(conversations, RATINGS)]

    def pairwise(self, user_profile: str, champion: list[dict], baseline: list[dict]) -> PairVerdict:
        """Ask twice with the lists swapped; P(champion better) from each order."""
        first, swapped = self.backend.score_choices([
            self.pairwise_template.messages({"user": user_profile, "A": champion, "B": baseline}),
            self.pairwise_template.messages({"user": user_profile, "A": baseline, "B": champion}),
        ], SIDES)
        p_first, p_swapped = first["A"], swapped["B"]
        if p_first > 0.5 and p_swapped > 0.5:
            verdict = "champion"
        elif p_first < 0.5 and p_swapped < 0.5:
            verdict = "baseline"
        else:
            verdict = "inconsistent"
        return PairVerdict(p_first, p_swapped, verdict)
