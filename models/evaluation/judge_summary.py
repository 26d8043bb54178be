"""What the judge's scores say (models/evaluation/judge.py scores them), calibrated on truth:

    summarize(pointwise, pairwise, evaluator)   judge_auc (+ CI, `trusted`), AUC by kind of negative,
                                                position_bias_rate, win rates (withheld, with the
                                                reason, unless the evaluator check earns them)
    verdict_truth_agreement(pointwise, pairwise)   the nightly pair's verdict against the test items
    agreement(frames_a, frames_b)               how far two judges agree (the multi-judge option)

judge_auc (how often the held-out test item outscores a random unseen item) and its interval over
users come from models/common/stats.py.
"""

import pandas as pd

from models.common.stats import auc, auc_interval, wilson
from models.evaluation.evaluator_split import verdicts_earned
from models.evaluation.judge import UNJUDGED
from models.evaluation.negatives import auc_by_negatives

# A judge is trusted when the 95% interval of its AUC (held-out item vs random unseen items) lies
# clear of chance by a margin: lower bound >= 0.60. Below that its verdicts are not results.
TRUST_AUC_LOWER = 0.60


def summarize(
    pointwise: pd.DataFrame, pairwise: pd.DataFrame, evaluator: dict | None = None
) -> dict:
    """The judge's calibration against truth and its verdict on champion vs baseline (over the users
    it judged; those its backend failed on are counted as `unjudged_users`). `evaluator` is this
    judge's check on the evaluator split (models/evaluation/evaluator_split.py): without one passed,
    win rates are withheld."""
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
    # a trusted scorer of items may still misjudge whole lists (a judge weaker than the models it
    # compares leans to what it knows best, e.g. popular films); its list verdicts count only when
    # it orders both ladders and agrees with held-out events beyond a coin
    earned, why_not = verdicts_earned(evaluator)
    verdicts_trusted = trusted and earned
    if not trusted:
        reason = (
            f"judge_auc {judge_auc:.3f}, 95% CI [{interval[0]:.2f}, {interval[1]:.2f}]: the lower bound is below "
            f"{TRUST_AUC_LOWER:.2f}, so this judge's verdicts are not results"
        )
    else:
        reason = None if earned else f"{why_not}: win rates are not results"
    truth = (
        {
            "verdict_truth_agreement": evaluator["verdict_truth_agreement"],
            "verdict_truth_n": evaluator["n_decisive"],
            "verdict_truth_ci": evaluator["verdict_truth_ci"],
        }
        if evaluator
        else {"verdict_truth_agreement": None, "verdict_truth_n": 0, "verdict_truth_ci": None}
    )
    return {
        "n_users": int(pairwise["user_id"].nunique()),
        "unjudged_users": int(len(unjudged)),
        "judge_auc": judge_auc,
        "judge_auc_ci": interval,
        "auc_by_negatives": auc_by_negatives(pointwise)
        if "item_train_count" in pointwise.columns
        else {},
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
        # the evaluator split's figures (every pair of models, held-out events) ...
        **truth,
        "n_decisive": truth["verdict_truth_n"],
        "ladder_tau": evaluator["ladder_tau"] if evaluator else None,
        "evaluator_check": evaluator,
        # ... and the nightly pair's, on each sampled user's one test item
        "test_verdict_truth": verdict_truth_agreement(pointwise, pairwise),
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
