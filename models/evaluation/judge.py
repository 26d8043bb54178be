"""A profile-aware LLM judge (after Spotify's "Profile-Aware LLM-as-a-Judge"), calibrated on truth.

The judge reads the user's natural-language profile (written from TRAIN history only) and item
profiles, and answers from its next-token distribution, never free text:

    pointwise(backend, user_profile, items)     expected rating over "1".."5" per item
    pairwise(backend, user_profile, a, b)       P(A better) asked in both orders; a verdict counts
                                                only when both orders agree
    judge_cases(judge, cases, cards)            both of the above for many users -> two DataFrames
    summarize(pointwise, pairwise)              judge_auc (+ CI, `trusted`), position_bias_rate, win rates
                                                (withheld, with the reason, when the judge is not trusted)
    agreement(frames_a, frames_b)               how far two judges agree (the multi-judge option)

judge_auc (how often the held-out test item outscores a random unseen item) and its interval over
users come from models/common/stats.py.

    judge = Judge(backend); judge.pointwise(profile, [{"title": ..., "profile": ...}, ...])
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.common.progress import bar
from models.common.stats import auc, auc_interval, wilson
from models.llm.base import LLMBackend
from models.llm.templates import PromptTemplate

RATINGS = ["1", "2", "3", "4", "5"]
# A judge is trusted when the 95% interval of its AUC (held-out item vs random unseen items) lies
# clear of chance by a margin: lower bound >= 0.60. Below that its verdicts are not results.
TRUST_AUC_LOWER = 0.60
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

    @property
    def items(self) -> list[str]:
        """Every item the case names, once, in role order (an item in two roles is scored once)."""
        return list(dict.fromkeys([*self.champion, *self.baseline, self.heldout, *self.randoms]))


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


def summarize(pointwise: pd.DataFrame, pairwise: pd.DataFrame) -> dict:
    """The judge's calibration against truth and its verdict on champion vs baseline (over the users
    it judged; those its backend failed on are counted as `unjudged_users`)."""
    unjudged = pairwise[pairwise["verdict"] == UNJUDGED]
    pairwise = pairwise[pairwise["verdict"] != UNJUDGED]
    if pairwise.empty:
        raise RuntimeError(
            f"the judge failed on every one of {len(unjudged)} users; first error: "
            f"{unjudged['error'].iloc[0] if len(unjudged) else 'no users'}"
        )
    consistent = pairwise[pairwise["verdict"].isin(["champion", "baseline"])]
    judge_auc = auc(
        pointwise.loc[pointwise["role"] == "heldout", "score"],
        pointwise.loc[pointwise["role"] == "random", "score"],
    )
    interval = auc_interval(pointwise)
    trusted = interval[0] >= TRUST_AUC_LOWER
    truth = verdict_truth_agreement(pointwise, pairwise)
    # a trusted scorer of items may still misjudge whole lists (a judge weaker than the models it
    # compares leans to what it knows best); its list verdicts count only when they beat a coin
    # against held-out truth at 95%
    verdicts_trusted = (
        trusted and truth["verdict_truth_ci"] is not None and truth["verdict_truth_ci"][0] > 0.5
    )
    if not trusted:
        reason = (
            f"judge_auc {judge_auc:.3f}, 95% CI [{interval[0]:.2f}, {interval[1]:.2f}]: the lower bound is below "
            f"{TRUST_AUC_LOWER:.2f}, so this judge's verdicts are not results"
        )
    elif not verdicts_trusted:
        reason = (
            "no user's test item is in exactly one of the two lists, so the list verdict cannot be checked"
            if truth["verdict_truth_ci"] is None
            else f"the list verdict agrees with held-out truth on {truth['verdict_truth_agreement']:.2f} "
            f"[{truth['verdict_truth_ci'][0]:.2f}, {truth['verdict_truth_ci'][1]:.2f}] of "
            f"{truth['verdict_truth_n']} users: not clear of a coin's 0.5, so win rates are not results"
        )
    else:
        reason = None
    return {
        "n_users": int(pairwise["user_id"].nunique()),
        "unjudged_users": int(len(unjudged)),
        "judge_auc": judge_auc,
        "judge_auc_ci": interval,
        "trusted": bool(trusted),
        "verdicts_trusted": bool(verdicts_trusted),
        "withheld_reason": reason,
        "position_bias_rate": float((pairwise["verdict"] == "inconsistent").mean()),
        # among the users whose two orders agree; None when none do or when the verdicts are not trusted
        "champion_win_rate": float((consistent["verdict"] == "champion").mean())
        if len(consistent) and verdicts_trusted
        else None,
        "n_consistent_verdicts": int(len(consistent)),
        # position-calibrated alternative (Wang et al. 2023, "LLMs are not fair evaluators"): average
        # the two orders' P(champion better), so a judge that always says "A" lands at 0.5
        "champion_win_rate_order_averaged": float(
            ((pairwise["p_champion_first_order"] + pairwise["p_champion_swapped"]) / 2 > 0.5).mean()
        )
        if verdicts_trusted
        else None,
        "mean_score": {
            role: round(float(v), 4)
            for role, v in pointwise.groupby("role")["score"].mean().items()
        },
        **truth,
    }


def verdict_truth_agreement(pointwise: pd.DataFrame, pairwise: pd.DataFrame) -> dict:
    """The list verdict against held-out truth: among users where exactly one of the two lists holds
    their test item, how often the judge prefers that list (with a 95% Wilson interval)."""
    unchecked = {"verdict_truth_agreement": None, "verdict_truth_n": 0, "verdict_truth_ci": None}
    if "is_heldout_truth" not in pointwise.columns:
        return unchecked
    hits = (
        pointwise[pointwise["role"].isin(["champion", "baseline"])]
        .groupby(["user_id", "role"])["is_heldout_truth"]
        .any()
        .unstack("role")
    )
    if not {"champion", "baseline"} <= set(hits.columns):
        return unchecked
    decided = hits[hits["champion"] != hits["baseline"]]
    truth = decided["champion"].map({True: "champion", False: "baseline"})
    verdicts = pairwise.set_index("user_id")["verdict"].reindex(truth.index)
    n, agree = len(truth), int((verdicts == truth).sum())
    if n == 0:
        return unchecked
    return {
        "verdict_truth_agreement": agree / n,
        "verdict_truth_n": n,
        "verdict_truth_ci": wilson(agree, n),
    }


def agreement(
    first: tuple[pd.DataFrame, pd.DataFrame], second: tuple[pd.DataFrame, pd.DataFrame]
) -> dict:
    """Two judges on the same cases: verdict agreement (users where both gave a consistent verdict)
    and the rank correlation of their pointwise scores on the same (user, item, role)."""
    (point_a, pair_a), (point_b, pair_b) = first, second
    pairs = pair_a.merge(pair_b, on="user_id", suffixes=("_a", "_b"))
    no_verdict = ["inconsistent", "tie", UNJUDGED]
    both = pairs[~pairs["verdict_a"].isin(no_verdict) & ~pairs["verdict_b"].isin(no_verdict)]
    points = point_a.merge(point_b, on=["user_id", "item_id", "role"], suffixes=("_a", "_b"))
    return {
        "verdict_agreement_rate": float((both["verdict_a"] == both["verdict_b"]).mean())
        if len(both)
        else None,
        "n_users_both_consistent": int(len(both)),
        "score_spearman": float(points["score_a"].corr(points["score_b"], method="spearman"))
        if len(points) > 1
        else None,
    }
