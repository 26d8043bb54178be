"""Evaluating the evaluators: a split of their own, systems of known order, and the checks.

One test film per user decides few pairs of lists (41 of 200 users for champion vs popularity), so
a judge's or simulator's agreement with held-out truth carried an interval of +-0.15. Here each
user's last `n_heldout` train events are held out of the evaluator's fitting; every system's list
is scored from the history before them, and a pair of lists is decided for a user when one list
holds more of those events than the other.

    split = evaluator_split(data, n_heldout=10)      split.fit: what evaluators and refits learn from
    systems, valid, best = refit_systems(builders, split, seed)   each model's lists + the ladders
    judge = fit_judge(split, vectors, config, ...); model = fit_choice_model(split, judge, ...)
    report = check_evaluator(split, systems, judge_item_scores(judge, split.prefix), "mean", ndcg)
    earned, why_not = verdicts_earned(report)       the trust rule

`item_scores` is the evaluator's [users, items] matrix for split.users (the judge's P(relevant), the
simulator's P(next film)); a list's score is their mean (the judge) or sum (the simulator's P(pick)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from models.common.stats import kendall_tau, ratio_interval
from models.recsys.data import NO_ITEM, SplitData

LADDERS = ("popular", "random")
LADDER_STEPS = 10  # 0%, 10%, ..., 90% of the best list replaced
TRUST_LADDER_TAU = 0.8


@dataclass
class EvaluatorSplit:
    fit: SplitData  # train: the prefix but its last event; valid: that event; no test
    users: np.ndarray  # indices of the users with held-out events
    prefix: list[np.ndarray]  # per user of `users`: the history their lists are scored from
    heldout: list[np.ndarray]  # per user of `users`: their next `n_heldout` events


def evaluator_split(data: SplitData, n_heldout: int = 10, min_prefix: int = 5) -> EvaluatorSplit:
    """Each user with at least `min_prefix + n_heldout` train events: the last `n_heldout` held
    out; the rest is what evaluators are fitted on (its last event as their valid item). Valid and
    test of the recommenders' split are never read."""
    train, valid = [], np.full(data.n_users, NO_ITEM, dtype=np.int64)
    users, prefix, heldout = [], [], []
    for u, sequence in enumerate(data.train):
        if len(sequence) < min_prefix + n_heldout:
            train.append(sequence)  # too short to hold out: fitted on, not evaluated
            continue
        head = sequence[:-n_heldout]
        train.append(head[:-1])
        valid[u] = head[-1]
        users.append(u)
        prefix.append(head)
        heldout.append(sequence[-n_heldout:])
    empty = np.full(data.n_users, NO_ITEM, dtype=np.int64)
    fit = replace(data, train=train, valid=valid, test=empty, test_history=None, new_at_valid=None)
    return EvaluatorSplit(fit, np.asarray(users, dtype=np.int64), prefix, heldout)


def ladders(
    best: list[list[int]], fillers: dict[str, list[list[int]]], k: int = 10
) -> dict[str, list[list[int]]]:
    """Systems of known order: per ladder (a filler's lists), the best lists with their last 0%,
    10%, ..., 90% replaced by the filler's first items not already kept, named `ladder/step`, and
    the filler alone as `ladder/pure`."""
    systems = {}
    for ladder, filler in fillers.items():
        for step in range(LADDER_STEPS):
            keep = k - round(k * step / LADDER_STEPS)
            lists = []
            for mine, theirs in zip(best, filler):
                kept = list(mine[:keep])
                lists.append(kept + [i for i in theirs if i not in kept][: k - len(kept)])
            systems[f"{ladder}/{step}"] = lists
        systems[f"{ladder}/pure"] = [list(one[:k]) for one in filler]
    return systems


def top_lists(model, split: EvaluatorSplit, k: int = 10, batch: int = 256) -> list[list[int]]:
    """A fitted model's top-k per user of `split.users` from the history before their held-out
    events, items of that history left out."""
    import torch

    from models.recsys.data import seen_mask

    lists = []
    with torch.no_grad():
        for start in range(0, len(split.users), batch):
            histories = split.prefix[start : start + batch]
            scores = model.score_all(split.users[start : start + batch], histories).float()
            scores = scores.masked_fill(
                seen_mask(histories, scores.shape[1], scores.device), -torch.inf
            )
            lists += torch.topk(scores, k, dim=1).indices.cpu().tolist()
    return lists


def refit_systems(
    builders: dict, split: EvaluatorSplit, seed: int, k: int = 10, log=print
) -> tuple[dict[str, list[list[int]]], dict[str, float], str]:
    """Every model (`builders[name](seed)` returns it unfitted) fitted on `split.fit` (selected on
    its valid item), its lists at the cut, then both ladders on the best by that valid NDCG@10
    (popularity's top unseen films; random unseen ones). (systems, valid NDCG@10, best)."""
    from models.evaluation.cases import random_unseen
    from models.evaluation.negatives import top_unseen

    systems, valid = {}, {}
    for name, build in builders.items():
        model = build(seed)
        fit = model.fit(split.fit, log=lambda _: None)
        systems[name], valid[name] = top_lists(model, split, k), float(fit.best_valid_ndcg10)
        log(f"evaluator split: {name} refit, valid NDCG@10 {valid[name]:.4f} ({fit.seconds:.0f} s)")
    best = max(valid, key=lambda name: np.nan_to_num(valid[name], nan=-1.0))
    rng = np.random.default_rng(seed)
    by_popularity = np.argsort(-split.fit.train_counts(), kind="stable")
    n_items = split.fit.n_items
    fillers = {
        "popular": [list(top_unseen(by_popularity, h, 2 * k)) for h in split.prefix],
        "random": [list(random_unseen(rng, n_items, h, 2 * k)) for h in split.prefix],
    }
    systems.update(ladders(systems[best], fillers, k))
    return systems, valid, best


def list_scores(item_scores: np.ndarray, lists: list[list[int]], aggregate: str) -> np.ndarray:
    """Per user, the evaluator's score of their list: the mean or the sum of its items' scores."""
    out = np.full(len(lists), np.nan)
    for row, items in enumerate(lists):
        if len(items):
            values = item_scores[row, items]
            out[row] = values.mean() if aggregate == "mean" else values.sum()
    return out


def truth_hits(split: EvaluatorSplit, lists: list[list[int]]) -> np.ndarray:
    """Per user, how many of their held-out events the list holds."""
    return np.array([len(set(one) & set(h.tolist())) for one, h in zip(lists, split.heldout)])


def check_evaluator(
    split: EvaluatorSplit,
    systems: dict[str, list[list[int]]],
    item_scores: np.ndarray,
    aggregate: str,
    offline_ndcg: dict[str, float],
) -> dict:
    """Does the evaluator order systems as the held-out events do? Per ladder, Kendall tau between
    its mean list score and the known order; whether the pure filler ever outscores the best list;
    over every pair of model systems (not ladders), how often its per-user preference agrees with
    the held-out events where they decide (user-bootstrap interval); tau of its model order against
    offline NDCG@10."""
    scores = {name: list_scores(item_scores, lists, aggregate) for name, lists in systems.items()}
    hits = {name: truth_hits(split, lists) for name, lists in systems.items()}
    mean = {name: float(np.nanmean(s)) for name, s in scores.items()}
    ladder = {}
    for name in LADDERS:
        steps = [f"{name}/{s}" for s in range(LADDER_STEPS)]
        if not all(s in scores for s in steps):
            continue
        ladder[name] = {
            "tau": kendall_tau([mean[s] for s in steps], [-s for s in range(LADDER_STEPS)]),
            "truth_tau": kendall_tau(
                [hits[s].mean() for s in steps], [-s for s in range(LADDER_STEPS)]
            ),
            "score_by_step": [round(mean[s], 5) for s in steps],
            "truth_hits_by_step": [round(float(hits[s].mean()), 4) for s in steps],
            "pure_score": round(mean[f"{name}/pure"], 5),
            "pure_truth_hits": round(float(hits[f"{name}/pure"].mean()), 4),
            "pure_beats_best": bool(mean[f"{name}/pure"] > mean[steps[0]]),
        }
    models = [n for n in systems if "/" not in n]
    agree, decided = np.zeros(len(split.users)), np.zeros(len(split.users))
    for a, b in combinations(models, 2):
        truth = np.sign(hits[a] - hits[b])
        said = np.sign(scores[a] - scores[b])
        counted = truth != 0
        decided += counted
        agree += counted & (said == truth)
    rate, interval = ratio_interval(agree, decided)
    scored = [n for n in models if offline_ndcg.get(n) is not None]
    return {
        "ladders": ladder,
        "ladder_tau": {name: one["tau"] for name, one in ladder.items()},
        "pure_popular_beats_best": ladder.get("popular", {}).get("pure_beats_best"),
        "n_users": int(len(split.users)),
        "n_decisive": int(decided.sum()),
        "n_decisive_users": int((decided > 0).sum()),
        "n_model_pairs": len(models) * (len(models) - 1) // 2,
        "verdict_truth_agreement": rate,
        "verdict_truth_ci": interval,
        "score_by_model": {n: round(mean[n], 5) for n in models},
        "truth_hits_by_model": {n: round(float(hits[n].mean()), 4) for n in models},
        "tau_vs_offline_ndcg": kendall_tau(
            [mean[n] for n in scored], [offline_ndcg[n] for n in scored]
        )
        if len(scored) >= 2
        else None,
        "n_models": len(scored),
    }


def fit_judge(split: EvaluatorSplit, vectors: np.ndarray, config, *, n_users, n_random, seed):
    """The tuned judge by the nightly recipe (the probe fitted on train, calibrated on valid) but
    on `split.fit`, so it has seen no held-out event."""
    from models.evaluation.judge_probe import ProbeJudge
    from models.evaluation.judge_tuning import tune_probe

    data = split.fit
    tuned = tune_probe(vectors, data, config, n_users=n_users, n_random=n_random, seed=seed)
    return ProbeJudge(tuned.probe, tuned.calibration, vectors, [str(i) for i in data.items])


def fit_choice_model(split: EvaluatorSplit, judge, negative_kinds=None, seed: int = 0):
    """The simulator's choice model by the nightly recipe (fitted on valid) on `split.fit`, over a
    judge fitted on it too (`fit_judge`)."""
    from models.evaluation.simulator_choosers import ChoiceModel, fit_on_valid

    data = split.fit
    model = ChoiceModel(judge, dict(zip(map(str, data.items), data.train_counts().tolist())))
    fit_on_valid(model, data, negative_kinds, seed)
    return model


def judge_item_scores(judge, histories: list[np.ndarray]) -> np.ndarray:
    """The tuned judge's calibrated P(relevant) of every item, per history: [users, items]."""
    n_items = len(judge.vectors)
    every = np.tile(np.arange(n_items), (len(histories), 1))
    return judge.calibration(judge.probe.candidate_scores(judge.vectors, histories, every))


def simulator_item_scores(model, histories: list[np.ndarray], items: np.ndarray) -> np.ndarray:
    """The choice model's P(next film = item) per history: [users, items]; a list's sum is the
    simulated user's P(picking something from it)."""
    ids = [[str(items[i]) for i in h] for h in histories]
    return np.exp(model.log_probabilities(ids))


def verdicts_earned(check: dict | None) -> tuple[bool, str | None]:
    """The trust rule for win rates and pick rates: both ladders ordered (tau >= 0.8) and the
    verdicts' agreement with held-out events clear of a coin (interval above 0.5). (earned, why not)."""
    if check is None:
        return False, "not checked on the evaluator split (ladders, every pair of models)"
    reasons = []
    for ladder in LADDERS:
        tau = check["ladder_tau"].get(ladder)
        if tau is None or tau < TRUST_LADDER_TAU:
            shown = "undefined" if tau is None else f"{tau:.2f}"
            reasons.append(f"the {ladder} ladder's tau is {shown}, below {TRUST_LADDER_TAU}")
    ci = check["verdict_truth_ci"]
    if ci is None or ci[0] <= 0.5:
        rate = check["verdict_truth_agreement"]
        reasons.append(
            "no pair of lists is decided by the held-out events"
            if ci is None
            else f"verdicts agree with the held-out events on {rate:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
            f"of {check['n_decisive']} decisive cases: not clear of a coin's 0.5"
        )
    return not reasons, "; ".join(reasons) or None
