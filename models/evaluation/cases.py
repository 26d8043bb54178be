"""Who is evaluated and against what: the users an evaluator samples and the negatives it scores.

Every evaluator (the nightly judge, the tuned judge's calibration, the simulated users) asks the
same two questions: which users, stratified by how much they rated, and which random items they
had not rated by the held-out moment. Both are answered here, seeded, so one seed gives one sample.

    users = sample_users(train_counts, n=200, seed=0)
    randoms = random_unseen(rng, n_items, seen=everything_up_to_the_heldout_item, n=10)
    cases = judge_cases_for(data, champion_lists, baseline_lists, profiles, n_users=200, ...)
"""

import numpy as np
import pandas as pd

from models.evaluation.judge import JudgeCase
from models.evaluation.negatives import popularity_deciles, popularity_matched


def sample_users(activity: pd.Series, n: int, seed: int, strata: int = 4) -> list[str]:
    """`n` users, seeded, stratified by activity (train interaction count) quartiles, so light and
    heavy users are both judged; all users when there are fewer than `n`."""
    if len(activity) <= n:
        return sorted(activity.index.astype(str))
    rng = np.random.default_rng(seed)
    bins = pd.qcut(activity.rank(method="first"), q=min(strata, len(activity)), labels=False)
    chosen = []
    for stratum, size in zip(
        range(strata), np.diff(np.linspace(0, n, strata + 1).round().astype(int))
    ):
        members = np.sort(activity.index[bins == stratum].astype(str))
        chosen.extend(rng.choice(members, size=min(size, len(members)), replace=False))
    return sorted(chosen)


def sample_split_users(data, users, n: int, seed: int) -> list[str]:
    """`sample_users` over user indices of a `models.recsys.data.SplitData`, their activity being
    their train length: the ids of the sampled users."""
    return sample_users(pd.Series({data.users[u]: len(data.train[u]) for u in users}), n, seed)


def random_unseen(rng: np.random.Generator, n_items: int, seen: np.ndarray, n: int) -> np.ndarray:
    """`n` distinct item indices (fewer when fewer exist) outside `seen`: a user's train history up to
    and including the held-out item, so a negative is never something they rated by then."""
    unseen = np.setdiff1d(np.arange(n_items), seen)
    return rng.choice(unseen, size=min(n, len(unseen)), replace=False)


def judge_cases_for(
    data,
    champion_lists: dict[str, list[str]],
    baseline_lists: dict[str, list[str]],
    profiles: dict[str, str],
    *,
    n_users: int,
    n_random: int,
    seed: int,
    needs_profile: bool,
) -> list[JudgeCase]:
    """The nightly judge's cases from a `models.recsys.data.SplitData`: users with a test item, both
    lists and (when a judge reads it) a profile, sampled by train activity; each with its test item,
    `n_random` random items it had not rated by then, as many of the test item's popularity decile
    and its history up to the valid item."""
    eligible = [
        u
        for u in data.eval_users("test")
        if data.users[u] in champion_lists
        and data.users[u] in baseline_lists
        and (data.users[u] in profiles or not needs_profile)
    ]
    if not eligible:
        raise ValueError(
            "no user has a test item, both models' lists"
            + (
                " and a profile; materialize user_profiles and"
                if needs_profile
                else "; materialize"
            )
            + " the models first"
        )
    index = {user_id: u for u, user_id in enumerate(data.users)}
    rng = np.random.default_rng(seed)
    # a second stream, so the random negatives stay what they were before matched ones existed
    matched_rng = np.random.default_rng([seed, 1])
    deciles = popularity_deciles(data.train_counts())
    cases = []
    for user_id in sample_split_users(data, eligible, n_users, seed):
        u = index[user_id]
        seen = np.append(data.histories([u], "test")[0], data.test[u])
        randoms = random_unseen(rng, data.n_items, seen, n_random)
        matched = popularity_matched(matched_rng, deciles, data.test[u], seen, n_random)
        cases.append(
            JudgeCase(
                user_id,
                profiles.get(user_id, ""),
                champion_lists[user_id],
                baseline_lists[user_id],
                str(data.items[data.test[u]]),
                [str(data.items[i]) for i in randoms],
                history=[str(data.items[i]) for i in seen[:-1]],
                matched=[str(data.items[i]) for i in matched],
            )
        )
    return cases
