"""The gate: which registered version holds the `champion` alias, decided on valid NDCG@10 paired
over users (test never takes part)."""

import mlflow
import pandas as pd

from models.common.stats import paired_interval
from models.registry.champion import champion_version
from models.registry.tracking import CHAMPION_ALIAS, REGISTERED_MODEL, metric_name
from models.registry.versions import artifacts_present, latest_per_model, valid_by_user

# The gate prefers the first of these that the best candidate does not beat beyond noise: a model
# that is not measurably better is not worth what it costs to train, serve and explain.
SIMPLEST_FIRST = ("popularity", "content_retriever", "ease", "sasrec", "llm_sasrec", "two_stage")


def _simplicity(version) -> int:
    name = version.tags.get("model_name", "")
    return SIMPLEST_FIRST.index(name) if name in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def _interval(client: mlflow.MlflowClient, a, b, cache: dict) -> tuple[float, float] | None:
    """95% bootstrap interval of valid NDCG@10 of version a minus b, paired over their users."""
    for v in (a, b):
        if v.version not in cache:
            cache[v.version] = valid_by_user(client, v)
    if cache[a.version] is None or cache[b.version] is None:
        return None
    pair = pd.concat([cache[a.version], cache[b.version]], axis=1, join="inner").to_numpy()
    return paired_interval(pair[:, 0] - pair[:, 1]) if len(pair) else None


def _outcomes_say(
    chosen, current, candidates: dict, outcomes: dict
) -> tuple[object | None, str, bool]:
    """With enough next-day outcomes, another model than the champion's takes over only if its
    shadow lists beat the served ones beyond noise (hit@10, paired on the same user-days). The
    offline favourite is checked first; else any shadow model with a version on this data whose
    interval lies above 0 (the one with the highest low end), so a model the valid split ranks low
    but tomorrow ranks high is not passed over. Otherwise the champion's model stays, in its newest
    version (None: not trained on this data). The flag: the outcomes chose a new model, which no
    valid comparison then overrules."""
    mine, theirs = chosen.tags.get("model_name"), current.tags.get("model_name")
    span = f"over {outcomes['days']} days to {outcomes['last_day']}"
    shadows = outcomes["shadows"]

    def verdict(name: str) -> str:
        low, high = shadows[name]["minus_served_ci"]
        return f"{name}'s shadow hit@10 minus the served lists' in [{low:.4f}, {high:.4f}] {span}"

    if mine != theirs and mine in shadows and shadows[mine]["minus_served_ci"][0] > 0:
        return chosen, f"outcomes: {verdict(mine)}, above 0", True
    beating = [
        name
        for name, entry in shadows.items()
        if name in candidates and name != theirs and entry["minus_served_ci"][0] > 0
    ]
    if beating:
        best = max(beating, key=lambda name: shadows[name]["minus_served_ci"][0])
        passed = "" if mine == theirs else f" ({mine}, the offline favourite, does not)"
        return candidates[best], f"outcomes: {verdict(best)}, above 0{passed}", True
    if mine == theirs:
        return (
            chosen,
            f"outcomes: {mine} is already the served model; no shadow beats it {span}",
            False,
        )
    if mine not in shadows:
        return (
            candidates.get(theirs),
            f"outcomes: {mine} has no shadow lists {span}; {theirs} stays",
            False,
        )
    return candidates.get(theirs), f"outcomes: {verdict(mine)}, not above 0; {theirs} stays", False


def gate(client: mlflow.MlflowClient, data_version: str, outcomes: dict | None = None) -> dict:
    """Give `champion` to a candidate on this data version by VALID NDCG@10 (test never takes part),
    robust to the noise of one training run on a few hundred users:

    - the candidate is the simplest model (SIMPLEST_FIRST) whose valid NDCG@10 the best one does not
      beat beyond noise: the 95% paired bootstrap interval over users of (best - it) includes 0;
    - it replaces a champion on this data version only when it beats it beyond noise (the interval
      of candidate - champion lies above 0).

    Versions logged without per-user valid scores are compared on the mean alone, as before.

    `outcomes` (models.evaluation.outcomes.challenger_evidence: the served and shadow lists scored
    by the next day's events, over enough days) then has the last word on a change of model."""
    valid_tag = metric_name("valid", "ndcg@10")
    latest = latest_per_model(client, data_version)
    candidates = [v for v in latest.values() if artifacts_present(client, str(v.version))]
    decision = {
        "data_version": data_version,
        "candidates": {
            v.tags["model_name"]: {
                "version": str(v.version),
                "valid_ndcg@10": float(v.tags[valid_tag]),
            }
            for v in candidates
        },
    }
    current = champion_version(client)
    decision["champion_before"] = str(current.version) if current else None
    decision["champion_before_valid_ndcg@10"] = (
        float(current.tags[valid_tag]) if current and valid_tag in current.tags else None
    )
    if not candidates:
        return {
            **decision,
            "decision": "keep",
            "reason": "no candidate with artifacts on this data version",
            "champion": decision["champion_before"],
        }
    cache: dict = {}
    best = max(candidates, key=lambda v: (float(v.tags[valid_tag]), -int(v.version)))
    intervals = {v.version: _interval(client, best, v, cache) for v in candidates if v is not best}
    for v in candidates:
        if intervals.get(v.version) is not None:
            decision["candidates"][v.tags["model_name"]]["best_minus_this_ci95"] = [
                round(x, 4) for x in intervals[v.version]
            ]
    chosen, within = best, "the best valid NDCG@10"
    for v in sorted(candidates, key=lambda v: (_simplicity(v), -float(v.tags[valid_tag]))):
        if v is best:
            break  # nothing simpler is within noise of it
        if intervals[v.version] is not None and intervals[v.version][0] <= 0:
            low, high = intervals[v.version]
            chosen, within = (
                v,
                (
                    f"the simplest within noise of the best ({best.tags['model_name']} v{best.version}, "
                    f"best - this in [{low:.4f}, {high:.4f}])"
                ),
            )
            break
    said, by_outcomes = "", False
    if outcomes is not None and current is not None:
        decision["outcomes"] = outcomes
        by_model = {v.tags.get("model_name"): v for v in candidates}
        kept, said, by_outcomes = _outcomes_say(chosen, current, by_model, outcomes)
        within = f"{within}; {said}"
        if kept is None:  # the champion's model was not retrained on this data: it serves on
            decision.update(decision="keep", reason=within, champion=str(current.version))
            client.set_registered_model_tag(
                REGISTERED_MODEL, "last_gate", f"keep v{current.version}: {within}"
            )
            return decision
        chosen = kept
    chosen_valid, chosen_version = float(chosen.tags[valid_tag]), str(chosen.version)
    decision.update(
        candidate=chosen_version,
        candidate_model=chosen.tags["model_name"],
        candidate_valid_ndcg10=chosen_valid,
    )
    if current is None:
        promote, reason = True, f"no champion yet; {within}"
    elif not artifacts_present(client, str(current.version)):
        promote, reason = True, f"champion v{current.version}'s artifacts are missing"
    elif current.tags.get("data_version") != data_version:
        promote, reason = (
            True,
            f"champion v{current.version} was chosen on another data version; its valid score "
            f"does not compare; {within}",
        )
    elif str(current.version) == chosen_version:
        promote, reason = False, "the chosen candidate already is the champion"
    elif by_outcomes:  # tomorrow's evidence, not the valid split, decides a change of model
        promote, reason = True, within
    else:
        interval = _interval(client, chosen, current, cache)
        old = decision["champion_before_valid_ndcg@10"]
        if interval is None:
            promote = chosen_valid > old
            reason = (
                f"valid NDCG@10 {chosen_valid:.4f} {'>' if promote else '<='} champion's {old:.4f}"
            )
        else:
            promote = interval[0] > 0
            reason = (
                f"valid NDCG@10 {chosen_valid:.4f} vs champion's {old:.4f}: difference in "
                f"[{interval[0]:.4f}, {interval[1]:.4f}] (95%, paired over users), "
                f"{'above 0' if promote else 'not above 0: within noise'}"
            )
    if "outcomes" in decision and said not in reason:
        reason = f"{reason}; {said}"
    if promote:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, chosen_version)
    champion = chosen_version if promote else decision["champion_before"]
    decision.update(decision="promote" if promote else "keep", reason=reason, champion=champion)
    client.set_model_version_tag(
        REGISTERED_MODEL, chosen_version, "gate_decision", f"{decision['decision']}: {reason}"
    )
    client.set_registered_model_tag(
        REGISTERED_MODEL, "last_gate", f"{decision['decision']} v{chosen_version}: {reason}"
    )
    return decision


def last_gate(client: mlflow.MlflowClient) -> dict | None:
    """The gate's last decision and reason (the registered model's `last_gate` tag) and the champion."""
    models = client.search_registered_models(f"name='{REGISTERED_MODEL}'")
    if not models or "last_gate" not in models[0].tags:
        return None
    head, _, reason = models[0].tags["last_gate"].partition(": ")  # "promote v4: <reason>"
    current = champion_version(client)
    return {
        "decision": head.split(" ")[0],
        "reason": reason,
        "champion": current.version if current else None,
    }
