"""Who picks on the simulator's pages (simulator.py runs them): each chooser gives, for every page
of a user, P(each position) and then P(none).

    LLMChooser(backend, cards)   the LLM reads the profile, recent titles and the page and answers with
                            a letter (or X for none); its choice is the next-token distribution
    ChoiceModel(judge, counts).fit(...)  which film a person watches next: a softmax over films,
                            utilities from the tuned judge (models/evaluation/judge_probe.py), popularity and
                            recency, fitted on the VALID split
    ProbeChooser(model)     the person picks that film if the page holds it, else none: P(item) is its
                            P(next), P(none) the rest of the catalogue's (a RecSim-style choice model)
"""

from __future__ import annotations

import hashlib
import json
import string

import numpy as np

from models.evaluation.negatives import NegativeSampler
from models.evaluation.simulator_inputs import Page, SimulatedUser
from models.llm.templates import PromptTemplate

NONE = "X"  # the label of "none of these" (item labels are A, B, ...)
# what the choice model's next film competes with when it is fitted (fit_on_valid): sampled
# negatives, one per entry (None: every film). Against every film it learns popularity's full
# weight and put popular fill above the best list (ladder tau 0.78 on ML-100K's evaluator
# split); against these both ladders order at tau 1.00 (bench/evaluators.py, docs/judge.md)
CHOICE_NEGATIVES: tuple[str, ...] | None = (
    ("random",) * 5 + ("popularity_matched",) * 5 + ("popular",) * 5 + ("similar",) * 5
)
MAX_PAGE = 20  # A..T: letters that stay clear of the "none" label


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

    def fit(
        self,
        histories: list[list[str]],
        targets: list[str],
        l2: float = 1e-3,
        negatives: list[list[str]] | None = None,
    ) -> dict:
        """Maximum likelihood of each user's next film (the VALID item, from TRAIN histories):
        against every other film, or, with `negatives`, against those only (a sampled softmax over
        the target and its negatives: popularity-matched and hard ones, so the weights are not
        spent on telling popular films from obscure ones)."""
        import torch

        keep = [
            target not in set(history) for history, target in zip(histories, targets)
        ]  # repeats cannot be chosen
        histories = [h for h, k in zip(histories, keep) if k]
        targets = [t for t, k in zip(targets, keep) if k]
        if negatives is not None:
            negatives = [n for n, k in zip(negatives, keep) if k]
        self.mean, self.scale = np.zeros(len(self.FEATURES)), np.ones(len(self.FEATURES))
        raw = self.features(histories)
        self.mean, self.scale = (
            raw.reshape(-1, raw.shape[-1]).mean(0),
            raw.reshape(-1, raw.shape[-1]).std(0) + 1e-9,
        )
        x = torch.tensor((raw - self.mean) / self.scale, dtype=torch.float32)
        index = self.judge.index
        target = torch.tensor([index[t] for t in targets])
        if negatives is None:  # every film outside the history is a choice
            mask = torch.zeros(x.shape[:2], dtype=torch.bool)  # True: not a choice
            for row, history in enumerate(histories):
                mask[row, [index[i] for i in history if i in index]] = True
        else:  # only the target and its negatives are choices
            mask = torch.ones(x.shape[:2], dtype=torch.bool)
            for row, (t, negs) in enumerate(zip(targets, negatives)):
                mask[row, [index[t], *(index[i] for i in negs if i in index)]] = False
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
            "negatives": "sampled" if negatives is not None else "every film",
        }


def fit_on_valid(
    model: ChoiceModel, data, negative_kinds: tuple[str, ...] | None, seed: int
) -> dict:
    """Fit `model` on each VALID user's next film from their TRAIN history (a
    `models.recsys.data.SplitData`): against every film (`negative_kinds` None) or against
    sampled negatives of those kinds, one per entry (models/evaluation/negatives.py)."""
    users = data.eval_users("valid")
    ids = [str(i) for i in data.items]
    histories = [[ids[i] for i in data.train[u]] for u in users]
    targets = [ids[data.valid[u]] for u in users]
    negatives = None
    if negative_kinds is not None:
        sampler = NegativeSampler(data.train_counts(), model.judge.vectors)
        sampler.check(negative_kinds)
        rng, negatives = np.random.default_rng(seed), []
        for u in users:
            seen = np.append(data.train[u], data.valid[u])
            pools = sampler.hard_pools(negative_kinds, data.train[u], seen)
            drawn = sampler.sample(rng, list(negative_kinds), int(data.valid[u]), seen, pools)
            negatives.append([ids[i] for i in drawn])
    return model.fit(histories, targets, negatives=negatives)


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
