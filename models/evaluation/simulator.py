"""Simulated users (after RecAgent, Agent4Rec, RecSim): shown a page of K items, a simulated user
chooses one to watch, or none. A second opinion on the models' lists, validated against held-out
truth before anyone reads it. This module runs the simulation and validates it; the users and their
pages are simulator_inputs.py, the choosers (an LLM, or a choice model over the tuned judge)
simulator_choosers.py.

    simulate(chooser, users, pages, seed)  one row per shown item: its choice probability and the
                            sampled choice (the dice are seeded), plus the users left out and why
    summarize(choices, offline_ndcg, page_size)  held-out pick rate vs 1/K, pick rate per model with
                            intervals, Kendall tau against offline NDCG@10, pick rate by position,
                            `trusted` (both validations pass) or the reason its numbers are advisory

Validation: the held-out test item among K-1 random unseen items is picked (given a pick) with a
95% interval above 1.5/K, and on the evaluator split (models/evaluation/evaluator_split.py) the
simulator orders both ladders (Kendall tau >= 0.8) and prefers, user by user, the list that holds
more of their held-out events beyond a coin (interval above 0.5). Kendall tau of the models' pick
rates against their offline test NDCG@10 is reported beside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.common.progress import bar
from models.common.stats import bootstrap_mean, kendall_tau
from models.evaluation.evaluator_split import verdicts_earned
from models.evaluation.simulator_inputs import HELDOUT_PAGE, MODEL_PAGE, Page, SimulatedUser

TRUST_PICK_RATE_TIMES_CHANCE = 1.5  # the held-out pick rate's lower bound must exceed 1.5/K


@dataclass
class Simulation:
    choices: pd.DataFrame
    unsimulated: dict[str, int] = field(default_factory=dict)  # reason -> users
    redactions: int = 0


def simulate(
    chooser,
    users: list[SimulatedUser],
    pages: dict[str, list[Page]],
    seed: int,
    log: Callable[[str], None] = lambda _: None,
) -> Simulation:
    """Every user's pages through the chooser, a user at a time (their pages share a prefix). A user
    with no pages or an empty page, or whose chooser call fails, is counted by reason and skipped."""
    rng = np.random.default_rng(seed)
    rows, unsimulated, redactions = [], {}, 0
    progress = bar(len(users), f"{chooser.name} simulated users", "user")
    for number, user in enumerate(users, start=1):
        progress.update(1)
        user_pages = pages.get(user.user_id, [])
        reason = user.unusable or (
            "no pages"
            if not user_pages
            else "empty page"
            if any(not page.items for page in user_pages)
            else "no profile"
            if chooser.needs_profile and not user.profile
            else None
        )
        if reason:
            unsimulated[reason] = unsimulated.get(reason, 0) + 1
            continue
        try:
            distributions = chooser.choose(user, user_pages)
        except Exception as err:  # noqa: BLE001 - a failing backend skips this user, counted, not the run
            reason = f"backend failure: {type(err).__name__}"
            unsimulated[reason] = unsimulated.get(reason, 0) + 1
            log(
                f"{chooser.name}: user {user.user_id} not simulated: {type(err).__name__}: {str(err)[:160]}"
            )
            continue
        redactions += user.redactions
        for page, probabilities in zip(user_pages, distributions):
            probabilities = probabilities / probabilities.sum()
            picked = int(
                rng.choice(len(probabilities), p=probabilities)
            )  # the last outcome is "none"
            rows += [
                {
                    "user_id": user.user_id,
                    "page_id": page.page_id,
                    "page_kind": page.kind,
                    "position": position,
                    "item_id": item,
                    "model_name": page.model_name,
                    "model_version": page.model_version,
                    "is_heldout": item == page.heldout,
                    "choice_probability": float(probabilities[position - 1]),
                    "chosen": picked == position - 1,
                }
                for position, item in enumerate(page.items, start=1)
            ]
        if number % 25 == 0 or number == len(users):
            log(f"{chooser.name}: simulated {number} of {len(users)} users")
    progress.close()
    columns = [
        "user_id",
        "page_id",
        "page_kind",
        "position",
        "item_id",
        "model_name",
        "model_version",
        "is_heldout",
        "choice_probability",
        "chosen",
    ]
    return Simulation(pd.DataFrame(rows, columns=columns), unsimulated, redactions)


def page_pick_rates(choices: pd.DataFrame) -> pd.DataFrame:
    """Per page: P(picks something) and, on held-out pages, P(the held-out item | picks something)."""
    pages = choices.groupby(
        ["user_id", "page_id", "page_kind", "model_name", "model_version"], dropna=False
    )
    out = pages.agg(pick=("choice_probability", "sum"), size=("position", "size")).reset_index()
    heldout = choices[choices["is_heldout"]].set_index("page_id")["choice_probability"]
    out["heldout_given_pick"] = out["page_id"].map(heldout) / out["pick"].where(out["pick"] > 0)
    return out


def summarize(
    choices: pd.DataFrame,
    offline_ndcg: dict[tuple[str, str], float],
    page_size: int,
    evaluator: dict | None = None,
) -> dict:
    """The validation figures, pick rates per model and the trust decision (see the module doc).
    Pick rates are the simulator's expected ones (its choice probabilities averaged over users), so
    the dice add no noise; the sampled choices are in choices.parquet. `evaluator` is the
    simulator's check on the evaluator split (models/evaluation/evaluator_split.py)."""
    pages = page_pick_rates(choices)
    chance = 1.0 / page_size
    held = pages[pages["page_kind"] == HELDOUT_PAGE].dropna(subset=["heldout_given_pick"])
    heldout_rate = float(held["heldout_given_pick"].mean()) if len(held) else None
    heldout_ci = bootstrap_mean(held["heldout_given_pick"]) if len(held) else None
    sampled = choices[(choices["page_kind"] == HELDOUT_PAGE) & choices["chosen"]]

    by_model = {}
    for (name, version), group in pages[pages["page_kind"] == MODEL_PAGE].groupby(
        ["model_name", "model_version"]
    ):
        picks = choices[
            (choices["page_kind"] == MODEL_PAGE)
            & (choices["model_name"] == name)
            & (choices["model_version"] == version)
        ]
        by_model[name] = {
            "version": version,
            "pick_rate": float(group["pick"].mean()),
            "pick_rate_ci": bootstrap_mean(group["pick"]),
            "sampled_pick_rate": float(picks.groupby("page_id")["chosen"].any().mean()),
            "offline_test_ndcg_at_10": offline_ndcg.get((name, version)),
            "n_pages": int(len(group)),
        }
    scored = {
        n: m
        for n, m in by_model.items()
        if m["offline_test_ndcg_at_10"] is not None and np.isfinite(m["offline_test_ndcg_at_10"])
    }
    tau = None
    if len(scored) >= 2:
        tau = kendall_tau(
            [m["pick_rate"] for m in scored.values()],
            [m["offline_test_ndcg_at_10"] for m in scored.values()],
        )

    # position bias: on shuffled pages every position should be picked equally often, given a pick
    conditional = choices.assign(
        given_pick=choices["choice_probability"]
        / choices.groupby("page_id")["choice_probability"].transform("sum")
    )
    by_position = conditional[
        conditional["page_id"].map(pages.set_index("page_id")["size"]) == page_size
    ]
    by_position = by_position.groupby("position")["given_pick"].mean()

    reasons = []
    if heldout_ci is None:
        reasons.append("no held-out page was simulated")
    elif heldout_ci[0] <= TRUST_PICK_RATE_TIMES_CHANCE * chance:
        reasons.append(
            f"held-out pick rate {heldout_rate:.3f} [{heldout_ci[0]:.3f}, {heldout_ci[1]:.3f}]: the lower "
            f"bound is not above {TRUST_PICK_RATE_TIMES_CHANCE:g}/K = {TRUST_PICK_RATE_TIMES_CHANCE * chance:.3f}"
        )
    earned, why_not = verdicts_earned(evaluator)
    if not earned:
        reasons.append(why_not)
    return {
        "page_size": page_size,
        "chance_pick_rate": chance,
        "n_users": int(choices["user_id"].nunique()),
        "heldout_pick_rate": heldout_rate,
        "heldout_pick_ci": heldout_ci,
        "heldout_pick_rate_sampled": float(sampled["is_heldout"].mean()) if len(sampled) else None,
        "heldout_pick_rate_over_chance": heldout_rate / chance
        if heldout_rate is not None
        else None,
        "kendall_tau": tau,
        "n_models": len(scored),
        "pick_rate_by_model": by_model,
        "pick_rate_by_position": {int(k): round(float(v), 4) for k, v in by_position.items()},
        "position_max_over_min": float(by_position.max() / by_position.min())
        if len(by_position) and by_position.min() > 0
        else None,
        "ladder_tau": evaluator["ladder_tau"] if evaluator else None,
        "n_decisive": evaluator["n_decisive"] if evaluator else 0,
        "verdict_truth_agreement": evaluator["verdict_truth_agreement"] if evaluator else None,
        "verdict_truth_ci": evaluator["verdict_truth_ci"] if evaluator else None,
        "evaluator_check": evaluator,
        "trusted": not reasons,
        "advisory_reason": "; ".join(reasons) or None,
    }
