"""Simulated users (after RecAgent, Agent4Rec, RecSim): shown a page of K items, a simulated user
chooses one to watch, or none. A second opinion on the models' lists, validated against held-out
truth before anyone reads it.

    SimulatedUser           what the simulator knows of a person: TRAIN history only (item ids, the
                            last titles, the LLM profile written from train)
    guard_leakage(user, heldout)  the user side with the user's valid/test titles cut out; raises
                            if a held-out item is in the history (a bug)
    simulation_inputs(...)  the users and their shuffled pages: a held-out page, one per model
    Page                    K items, shuffled; the simulator never sees a model's name, score or rank
    LLMChooser(backend, cards)   the LLM reads the profile, recent titles and the page and answers with
                            a letter (or X for none); its choice is the next-token distribution
    ChoiceModel(judge, counts).fit(...)  which film a person watches next: a softmax over films,
                            utilities from the tuned judge (models/evaluation/judge_probe.py), popularity and
                            recency, fitted on the VALID split
    ProbeChooser(model)     the person picks that film if the page holds it, else none: P(item) is its
                            P(next), P(none) the rest of the catalogue's (a RecSim-style choice model)
    simulate(chooser, users, pages, seed)  one row per shown item: its choice probability and the
                            sampled choice (the dice are seeded), plus the users left out and why
    summarize(choices, offline_ndcg, page_size)  held-out pick rate vs 1/K, pick rate per model with
                            intervals, Kendall tau against offline NDCG@10, pick rate by position,
                            `trusted` (both validations pass) or the reason its numbers are advisory

Validation (the issue's rule): the held-out test item among K-1 random unseen items is picked
(given a pick) with a 95% interval above 1.5/K, and the models' simulated pick rates order them
like their offline test NDCG@10 (Kendall tau >= 0.6 over at least 4 model versions).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.common.progress import bar
from models.common.stats import bootstrap_mean, kendall_tau
from models.evaluation.cases import random_unseen
from models.llm.templates import PromptTemplate

TRUST_TAU = 0.6
TRUST_PICK_RATE_TIMES_CHANCE = 1.5  # the held-out pick rate's lower bound must exceed 1.5/K
MIN_MODELS = 4  # fewer model versions make Kendall tau too coarse to mean anything
NONE = "X"  # the label of "none of these" (item labels are A, B, ...)
MAX_PAGE = 20  # A..T: letters that stay clear of the "none" label
HELDOUT_PAGE = (
    "heldout"  # page kind of the validation page: the test item among random unseen items
)
MODEL_PAGE = "model"


@dataclass
class SimulatedUser:
    user_id: str
    history: list[str]  # TRAIN item ids in time order (the probe reads these)
    recent_titles: list[str]  # the last train titles, newest last
    profile: str = ""  # the LLM profile written from train
    redactions: int = 0  # held-out titles cut from the profile by guard_leakage
    unusable: str | None = (
        None  # why this user cannot be simulated without leaking (counted, skipped)
    )


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


class LLMChooser:
    """The zero-shot simulator: the LLM's next-token distribution over the page's letters and X."""

    def __init__(self, backend, cards: dict[str, str], cache=None):
        self.backend, self.cards, self.cache = backend, cards, cache
        self.template = PromptTemplate.load("simulator_choice_v1")
        self.name = f"{backend.backend}:{backend.model}"
        self.needs_profile = True

    def conversation(self, user: SimulatedUser, page: Page) -> list[dict]:
        # the user's part first and the page last: one user's pages share a prompt prefix, run once
        labels = string.ascii_uppercase[: len(page.items)]
        return self.template.messages(
            {
                "person": {"profile": user.profile, "recently_watched": user.recent_titles},
                "page": [f"{label}. {self.cards[item]}" for label, item in zip(labels, page.items)]
                + [f"{NONE}. none of these"],
            }
        )

    def choose(self, user: SimulatedUser, pages: list[Page]) -> list[np.ndarray]:
        """P(each position), then P(none), per page; cached by (model, template, conversation)."""
        conversations = [self.conversation(user, page) for page in pages]
        keys = [
            hashlib.sha256(json.dumps([self.name, self.template.version, c]).encode()).hexdigest()
            for c in conversations
        ]
        known = self.cache.get_many(keys) if self.cache else {}
        todo = [n for n, key in enumerate(keys) if key not in known]
        if todo:
            by_page = {}
            for n in todo:  # pages of one size share one call (the choices are its labels)
                by_page.setdefault(len(pages[n].items), []).append(n)
            fresh = {}
            for size, numbers in by_page.items():
                labels = [*string.ascii_uppercase[:size], NONE]
                answers = self.backend.score_choices([conversations[n] for n in numbers], labels)
                fresh.update(
                    {
                        keys[n]: json.dumps([a[label] for label in labels])
                        for n, a in zip(numbers, answers)
                    }
                )
            if self.cache:
                self.cache.put_many([(key, text, "simulator", 0) for key, text in fresh.items()])
            known = {**known, **{key: (text, "simulator", 0) for key, text in fresh.items()}}
        return [np.asarray(json.loads(known[key][0]), float) for key in keys]


class ChoiceModel:
    """The tuned simulator's user: which film a person watches next, as a softmax over every film
    outside their train history, with utility w . [the tuned judge's logit (the LLM's reading of
    the film against the history), log(1 + train count), similarity to the last `recent` films].
    The judge alone prefers popular films (its negatives were random); fitting w on the VALID
    split's next film puts popularity and recency at the weight the data gives them, test unseen."""

    FEATURES = ("judge_logit", "log_popularity", "recent_similarity")

    def __init__(self, judge, train_counts: dict[str, int], recent: int = 5, weights=None):
        self.judge, self.recent = judge, recent
        self.items = sorted(
            judge.index, key=judge.index.get
        )  # item ids in the judge's vector order
        self.log_popularity = np.log1p([train_counts.get(i, 0) for i in self.items])
        self.weights = (
            np.zeros(len(self.FEATURES)) if weights is None else np.asarray(weights, float)
        )
        self.mean, self.scale = np.zeros(len(self.FEATURES)), np.ones(len(self.FEATURES))

    def features(self, histories: list[list[str]]) -> np.ndarray:
        """[users, all items, features], standardized with the fitting data's mean and scale."""
        vectors, index = self.judge.vectors, self.judge.index
        known = [np.array([index[i] for i in h if i in index], dtype=int) for h in histories]
        every = np.tile(np.arange(len(self.items)), (len(known), 1))
        p = np.clip(self.judge.probe.candidate_scores(vectors, known, every), 1e-7, 1 - 1e-7)
        recent = np.stack(
            [
                vectors[k[-self.recent :]].mean(axis=0) if len(k) else np.zeros(vectors.shape[1])
                for k in known
            ]
        )
        x = np.stack(
            [
                np.log(p) - np.log1p(-p),
                np.broadcast_to(self.log_popularity, p.shape),
                recent @ vectors.T,
            ],
            axis=-1,
        )
        return (x - self.mean) / self.scale

    def log_probabilities(self, histories: list[list[str]]) -> np.ndarray:
        """log P(next film = each item) per user; films in the history get -inf."""
        utility = self.features(histories) @ self.weights
        for row, history in enumerate(histories):
            utility[row, [self.judge.index[i] for i in history if i in self.judge.index]] = -np.inf
        return utility - np.logaddexp.reduce(utility, axis=1, keepdims=True)

    def fit(self, histories: list[list[str]], targets: list[str], l2: float = 1e-3) -> dict:
        """Maximum likelihood of each user's next film (the VALID item, from TRAIN histories)."""
        import torch

        keep = [
            target not in set(history) for history, target in zip(histories, targets)
        ]  # repeats cannot be chosen
        histories = [h for h, k in zip(histories, keep) if k]
        targets = [t for t, k in zip(targets, keep) if k]
        self.mean, self.scale = np.zeros(len(self.FEATURES)), np.ones(len(self.FEATURES))
        raw = self.features(histories)
        self.mean, self.scale = (
            raw.reshape(-1, raw.shape[-1]).mean(0),
            raw.reshape(-1, raw.shape[-1]).std(0) + 1e-9,
        )
        x = torch.tensor((raw - self.mean) / self.scale, dtype=torch.float32)
        mask = torch.zeros(x.shape[:2], dtype=torch.bool)
        for row, history in enumerate(histories):
            mask[row, [self.judge.index[i] for i in history if i in self.judge.index]] = True
        target = torch.tensor([self.judge.index[t] for t in targets])
        w = torch.zeros(x.shape[-1], requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=100, line_search_fn="strong_wolfe")

        def loss():
            optimizer.zero_grad()
            logits = (x @ w).masked_fill(mask, -torch.inf)
            value = torch.nn.functional.cross_entropy(logits, target) + l2 * (w**2).sum()
            value.backward()
            return value

        optimizer.step(loss)
        self.weights = w.detach().numpy().astype(float)
        with torch.no_grad():
            logits = (x @ w).masked_fill(mask, -torch.inf)
            rank = (logits > logits.gather(1, target[:, None])).sum(1)
            nll = float(torch.nn.functional.cross_entropy(logits, target))
        return {
            "weights": dict(zip(self.FEATURES, self.weights.round(4).tolist())),
            "valid_nll": round(nll, 4),
            "valid_hit_rate_at_10": round(float((rank < 10).float().mean()), 4),
            "valid_users": len(targets),
        }


class ProbeChooser:
    """The tuned simulator: the person watches the film `ChoiceModel` says they watch next; on a
    page that holds it they pick it, else none. P(item i) is its P(next), P(none) the rest of the
    catalogue's. It reads films one by one, so it has no position bias by construction (pick rate
    by position shows it)."""

    def __init__(self, model: ChoiceModel, name: str = "probe"):
        self.model, self.name = model, name
        self.needs_profile = False  # it reads the history's items, not the profile

    def choose(self, user: SimulatedUser, pages: list[Page]) -> list[np.ndarray]:
        log_p = self.model.log_probabilities([user.history])[0]
        out = []
        for page in pages:
            p = np.exp(log_p[[self.model.judge.index[i] for i in page.items]])
            out.append(np.append(p, max(0.0, 1.0 - p.sum())))
        return out


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
    choices: pd.DataFrame, offline_ndcg: dict[tuple[str, str], float], page_size: int
) -> dict:
    """The validation figures, pick rates per model and the trust decision (see the module doc).
    Pick rates are the simulator's expected ones (its choice probabilities averaged over users), so
    the dice add no noise; the sampled choices are in choices.parquet."""
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
    if len(scored) < MIN_MODELS:
        reasons.append(
            f"{len(scored)} model versions with an offline NDCG@10: at least {MIN_MODELS} are needed"
        )
    elif tau is None or tau < TRUST_TAU:
        reasons.append(
            f"Kendall tau of pick rate vs offline NDCG@10 is {tau if tau is None else round(tau, 3)} "
            f"over {len(scored)} models: below {TRUST_TAU}"
        )
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
        "trusted": not reasons,
        "advisory_reason": "; ".join(reasons) or None,
    }
