"""What the simulated users (simulator.py) know and are shown: a person's TRAIN side, cut of anything
held out, and shuffled pages of K items. The simulator never sees a model's name, score or rank.

    SimulatedUser           what the simulator knows of a person: TRAIN history only (item ids, the
                            last titles, the LLM profile written from train)
    guard_leakage(user, heldout)  the user side with the user's valid/test titles cut out; raises
                            if a held-out item is in the history (a bug)
    simulation_inputs(...)  the users and their shuffled pages: a held-out page, one per model
    Page                    K items, shuffled; HELDOUT_PAGE (the test item among K-1 random unseen
                            items, the validation page) or MODEL_PAGE (a model version's top K)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from models.evaluation.cases import random_unseen

# page kind of the validation page: the test item among random unseen items
HELDOUT_PAGE = "heldout"
MODEL_PAGE = "model"


@dataclass
class SimulatedUser:
    user_id: str
    history: list[str]  # TRAIN item ids in time order (the probe reads these)
    recent_titles: list[str]  # the last train titles, newest last
    profile: str = ""  # the LLM profile written from train
    redactions: int = 0  # held-out titles cut from the profile by guard_leakage
    # why this user cannot be simulated without leaking (counted, skipped)
    unusable: str | None = None


@dataclass
class Page:
    page_id: str
    user_id: str
    kind: str  # HELDOUT_PAGE or MODEL_PAGE
    items: list[str]  # in display order (shuffled)
    model_name: str | None = None
    model_version: str | None = None
    heldout: str | None = None  # the test item on a held-out page


def shuffled_page(
    page_id: str, user_id: str, kind: str, items: list[str], rng: np.random.Generator, **fields
) -> Page:
    return Page(page_id, user_id, kind, [items[i] for i in rng.permutation(len(items))], **fields)


def guard_leakage(user: SimulatedUser, heldout: dict[str, str]) -> SimulatedUser:
    """The leakage guard: no valid/test title reaches the simulator from the user's side. `heldout`
    maps the user's valid/test item ids to their titles. A held-out id in the history means the
    history came from the wrong split (a bug: raise); a recent film with a held-out title (a
    duplicate title under another id) is left out, and a held-out title in the LLM profile (a model
    may name a film it was never shown) is cut; both counted."""
    if leaked := set(heldout) & set(user.history):
        raise ValueError(
            f"user {user.user_id}: held-out item(s) {sorted(leaked)} in the simulator's history"
        )
    patterns = [
        re.compile(rf"(?<!\w){re.escape(t)}(?!\w)", re.IGNORECASE)
        for t in dict.fromkeys(heldout.values())
        if len(t) >= 3
    ]
    recent = [text for text in user.recent_titles if not any(p.search(text) for p in patterns)]
    profile, cut = user.profile, len(user.recent_titles) - len(recent)
    for pattern in patterns:
        profile, n = pattern.subn("a film", profile)
        cut += n
    return SimulatedUser(user.user_id, user.history, recent, profile, user.redactions + cut)


def user_side_texts(user: SimulatedUser) -> list[str]:
    """Every text of the user that a simulator reads (what the leakage test searches)."""
    return [user.profile, *user.recent_titles]


def simulation_inputs(
    data,
    names: dict[str, str],
    cards: dict[str, str],
    profiles: dict[str, str],
    lists: dict[tuple[str, str], dict[str, list[str]]],
    user_ids: list[str],
    page_size: int,
    n_recent: int,
    seed: int,
) -> tuple[list[SimulatedUser], dict[str, list[Page]]]:
    """The simulated users and their pages, from a `models.recsys.data.SplitData`: each user knows
    their TRAIN history (ids, the cards of the last `n_recent` items, the profile with any held-out
    title cut; `names` are titles, `cards` what the LLM reads of an item),
    and sees one held-out page (their test item among page_size-1 random items outside everything
    they rated) and one page per model version (its first page_size items of `lists`), all shuffled."""
    rng = np.random.default_rng(seed)
    index = {user_id: u for u, user_id in enumerate(data.users)}
    users, pages = [], {}
    for user_id in user_ids:
        u = index[user_id]
        train = [str(data.items[i]) for i in data.train[u]]
        heldout = [str(data.items[i]) for i in (data.valid[u], data.test[u]) if i >= 0]
        user = SimulatedUser(
            user_id, train, [cards[i] for i in train[-n_recent:]], profiles.get(user_id, "")
        )
        if set(heldout) & set(
            train
        ):  # a repeat: the held-out film is already in the history it would read
            users.append(
                SimulatedUser(
                    user_id, [], [], unusable="held-out film already in the train history"
                )
            )
            continue
        users.append(guard_leakage(user, {i: names.get(i, "") for i in heldout}))
        own = []
        if data.test[u] >= 0:
            seen = np.concatenate([data.train[u], [data.valid[u], data.test[u]]])
            randoms = [
                str(data.items[i]) for i in random_unseen(rng, data.n_items, seen, page_size - 1)
            ]
            own.append(
                shuffled_page(
                    f"{user_id}/heldout",
                    user_id,
                    HELDOUT_PAGE,
                    [heldout[-1], *randoms],
                    rng,
                    heldout=heldout[-1],
                )
            )
        for (name, version), by_user in lists.items():
            own.append(
                shuffled_page(
                    f"{user_id}/{name}/v{version}",
                    user_id,
                    MODEL_PAGE,
                    list(by_user.get(user_id, []))[:page_size],
                    rng,
                    model_name=name,
                    model_version=version,
                )
            )
        pages[user_id] = own
    return users, pages
