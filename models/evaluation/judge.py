"""A profile-aware LLM judge (after Spotify's "Profile-Aware LLM-as-a-Judge"): the judge and its
cases. Summarizing its scores against truth is judge_summary.py.

The judge reads the user's natural-language profile (written from TRAIN history only) and item
profiles, and answers from its next-token distribution, never free text:

    pointwise(backend, user_profile, items)     expected rating over "1".."5" per item
    pairwise(backend, user_profile, a, b)       P(A better) asked in both orders; a verdict counts
                                                only when both orders agree
    judge_cases(judge, cases, cards)            both of the above for many users -> two DataFrames

    judge = Judge(backend); judge.pointwise(profile, [{"title": ..., "profile": ...}, ...])
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.common.progress import bar
from models.evaluation.negatives import NEGATIVE_KINDS, in_list
from models.llm.base import LLMBackend
from models.llm.templates import PromptTemplate

RATINGS = ["1", "2", "3", "4", "5"]
UNJUDGED = "unjudged"  # the pairwise verdict of a user the judge backend failed on
SIDES = ["A", "B"]


def expected_rating(distribution: dict[str, float]) -> float:
    """Mean of 1..5 under the judge's (normalized) probability of each digit."""
    return float(sum(int(choice) * p for choice, p in distribution.items()))


@dataclass
class PairVerdict:
    p_first_order: float  # P(champion better) with the champion shown as A
    p_swapped: float  # P(champion better) with the champion shown as B
    verdict: str  # "champion", "baseline", "inconsistent" (the orders disagree) or "tie"


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
        conversations = [
            self.pointwise_template.messages({"user": user_profile, "item": item}) for item in items
        ]
        return [expected_rating(d) for d in self.backend.score_choices(conversations, RATINGS)]

    def pairwise(
        self, user_profile: str, champion: list[dict], baseline: list[dict]
    ) -> PairVerdict:
        """Ask twice with the lists swapped; P(champion better) from each order."""
        first, swapped = self.backend.score_choices(
            [
                self.pairwise_template.messages(
                    {"user": user_profile, "A": champion, "B": baseline}
                ),
                self.pairwise_template.messages(
                    {"user": user_profile, "A": baseline, "B": champion}
                ),
            ],
            SIDES,
        )
        p_first, p_swapped = first["A"], swapped["B"]
        if p_first > 0.5 and p_swapped > 0.5:
            verdict = "champion"
        elif p_first < 0.5 and p_swapped < 0.5:
            verdict = "baseline"
        else:
            verdict = "inconsistent"
        return PairVerdict(p_first, p_swapped, verdict)

    def judge_case(self, case: "JudgeCase", cards: dict[str, dict], list_cards: dict[str, dict]):
        """Pointwise scores of every item the case names (each once) and the pairwise verdict."""
        items = [cards[i] for i in case.items]
        champion, baseline = (
            [list_cards[i] for i in case.champion],
            [list_cards[i] for i in case.baseline],
        )
        score_of = dict(zip(case.items, self.pointwise(case.profile, items)))
        return score_of, self.pairwise(case.profile, champion, baseline)


@dataclass
class JudgeCase:
    """One sampled user: the profile (train history only) and the item ids to judge by role."""

    user_id: str
    profile: str
    champion: list[str]  # the champion's top-k, ranked
    baseline: list[str]  # the baseline's top-k, ranked
    heldout: str  # the user's test item
    randoms: list[str] = field(default_factory=list)  # unseen items: the negatives of judge_auc
    history: list[str] = field(default_factory=list)  # what the user rated before the held-out item
    # unseen items of the held-out item's popularity decile (models/evaluation/negatives.py)
    matched: list[str] = field(default_factory=list)

    @property
    def in_list(self) -> list[str]:
        """The negatives the two lists put forward: their items other than the held-out one."""
        return in_list([self.champion, self.baseline], self.heldout, [])

    @property
    def items(self) -> list[str]:
        """Every item the case names, once, in role order (an item in two roles is scored once)."""
        return list(
            dict.fromkeys(
                [*self.champion, *self.baseline, self.heldout, *self.randoms, *self.matched]
            )
        )


def judge_cases(
    judge,
    cases: list[JudgeCase],
    cards: dict[str, dict],
    list_cards: dict[str, dict],
    log: Callable[[str], None] = lambda _: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pointwise rows (one per user, item and role; an item in two roles is scored once) and one
    pairwise row per user, from any judge with ``judge_case`` (the zero-shot `Judge`, the tuned
    `models.evaluation.judge_probe.ProbeJudge`). `cards` is what a judge reads of an item alone, `list_cards`
    of an item inside a list (shorter, so two lists of k fit one prompt)."""
    rows, pairs = [], []
    progress = bar(len(cases), f"{judge.name} judged users", "user")
    for number, case in enumerate(cases, start=1):
        progress.update(1)
        roles = (
            [(i, "champion") for i in case.champion]
            + [(i, "baseline") for i in case.baseline]
            + [(case.heldout, "heldout")]
            + [(i, "random") for i in case.randoms]
            + [(i, "popularity_matched") for i in case.matched]
            + [(i, "in_list") for i in case.in_list]
        )
        try:
            score_of, verdict = judge.judge_case(case, cards, list_cards)
        except KeyError:
            raise  # a missing card or item is a bug, not a backend failure
        except Exception as err:  # noqa: BLE001 - a failing judge backend skips this user, marked, not the run
            log(
                f"{judge.name}: user {case.user_id} not judged: {type(err).__name__}: {str(err)[:160]}"
            )
            pairs.append(
                {
                    "judge": judge.name,
                    "user_id": case.user_id,
                    "p_champion_first_order": np.nan,
                    "p_champion_swapped": np.nan,
                    "verdict": UNJUDGED,
                    "error": f"{type(err).__name__}: {err}"[:300],
                }
            )
            continue
        rows += [
            {
                "judge": judge.name,
                "user_id": case.user_id,
                "item_id": item,
                "role": role,
                "negative_kind": role if role in NEGATIVE_KINDS else "",
                "score": float(score_of[item]),
                "is_heldout_truth": item == case.heldout,
            }
            for item, role in roles
        ]
        pairs.append(
            {
                "judge": judge.name,
                "user_id": case.user_id,
                "p_champion_first_order": verdict.p_first_order,
                "p_champion_swapped": verdict.p_swapped,
                "verdict": verdict.verdict,
                "error": None,
            }
        )
        if number % 20 == 0 or number == len(cases):
            log(f"{judge.name}: judged {number} of {len(cases)} users")
    progress.close()
    return pd.DataFrame(rows), pd.DataFrame(pairs)
