"""Who is evaluated and against what: the users an evaluator samples and the negatives it scores.

Every evaluator (the nightly judge, the tuned judge's calibration, the simulated users) asks the
same two questions: which users, stratified by how much they rated, and which random items they
had not rated by the held-out moment. Both are answered here, seeded, so one seed gives one sample.

    users = sample_users(train_counts, n=200, seed=0)
    randoms = random_unseen(rng, n_items, seen=everything_up_to_the_heldout_item, n=10)
"""

import numpy as np
import pandas as pd


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


def random_unseen(rng: np.random.Generator, n_items: int, seen: np.ndarray, n: int) -> np.ndarray:
    """`n` distinct item indices (fewer when fewer exist) outside `seen`: a user's train history up to
    and including the held-out item, so a negative is never something they rated by then."""
    unseen = np.setdiff1d(np.arange(n_items), seen)
    return rng.choice(unseen, size=min(n, len(unseen)), replace=False)
