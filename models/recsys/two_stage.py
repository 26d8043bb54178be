"""Two-stage ranking: a base recommender's top-N candidates re-scored by LightGBM's LambdaMART over
point-in-time stats (Feast's `ranking_v1`) and LLM-derived features.

    valid = candidates(base, data, "valid", n=50)              # the base model's top-N, train histories
    X = feature_frame(valid, data.histories(valid.users, "valid"), sources)   # a row per (user, candidate)
    valid_eval, _ = cross_fitted(X, valid, data, config)        # out-of-fold: each user scored by a
                                                                #   ranker that never saw their label
    ranker = fit_ranker(X, labels(valid, data), valid.group_sizes, config)   # all users, for test
    test = candidates(base, data, "test", n=50)                # train+valid histories
    test_eval = evaluate_reranked(ranker, feature_frame(test, data.histories(test.users, "test"), sources), test,
                                  data, config)
    served = TwoStage(config, base, ranker, item_vectors, user_vectors, judge_npz, data.users, data.items)
    served.stats = lookup                                      # Feast, as of the moment it scores for
    served.score_all(users, histories)                         # a recommender: -inf outside the top-N

Labels are the held-out VALID item, which the base model did not train on; test is only reported.
Re-ranking reorders the top-N and the protocol keeps the top 20 of them, so the metrics are the
full-ranking ones of models/recsys/metrics.py. Feature groups (FEATURE_GROUPS) can be left out
one at a time: that is the ablation in bench/two_stage.py. `TwoStage` is the fitted pair as a
recommender like the others (score_all, state/from_state): what MLflow registers and the nightly
batch serves, with the Feast stats looked up by whoever serves it (`TwoStage.stats`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from models.recsys.data import SplitData, mean_vectors, seen_mask
from models.recsys.metrics import TOP_K, Evaluation, metrics_from_topk, rank_top_k, top_unseen
from models.recsys.pair_probe import Probe

STATS = ("n_interactions", "mean_rating", "rating_std", "days_since_first", "days_since_previous")
FEATURE_GROUPS = {
    "base": ["base_score", "base_rank"],
    "stats": [f"{side}_stats__{name}" for side in ("user", "item") for name in STATS],
    "text": ["history_text_sim", "recent_text_sim"],  # LLM item profiles (their MiniLM vectors)
    "user_profile": ["user_profile_sim"],  # the LLM user profile's vector vs the item's
    "judge": ["judge_score"],  # the tuned judge's raw P(relevant) (trained on train rows only)
}
LLM_GROUPS = ("text", "user_profile", "judge")
MONOTONE = {"base_score": 1, "base_rank": -1}


@dataclass
class TwoStageConfig:
    groups: tuple[str, ...] = tuple(FEATURE_GROUPS)
    n: int = 50  # candidates per user from the base model
    feature_service: str = "ranking_v1"  # the Feast service the stats group comes from
    folds: int = 5  # cross-fitting over users for the out-of-sample valid score
    # small trees, few rounds: one label per user (~45% of users have it among EASE's top 50 on
    # ML-100K) is little to learn from; chosen on cross-fitted valid (docs/recommenders.md)
    n_estimators: int = 50
    learning_rate: float = 0.05
    num_leaves: int = 4
    min_child_samples: int = 200
    seed: int = 0
    threads: int = 2
    device: str = "auto"  # the base model's


@dataclass
class Candidates:
    stage: str
    users: np.ndarray  # user indices, one per row
    items: np.ndarray  # [users, N] item indices, the base model's order
    scores: np.ndarray  # [users, N] the base model's scores

    @property
    def group_sizes(self) -> np.ndarray:
        return np.full(len(self.users), self.items.shape[1])


@dataclass
class FeatureSources:
    """What the features are computed from; a group whose source is missing is an error (leave the
    group out of the config instead), never a column of NaNs."""

    stats: pd.DataFrame | None = (
        None  # Feast rows aligned with the candidate rows: user_stats__*, item_stats__*
    )
    item_vectors: np.ndarray | None = None  # [n_items, d] unit vectors of the LLM item profiles
    user_vectors: np.ndarray | None = None  # [n_users, d] unit vectors of the LLM user profiles
    # (histories, candidate items [users, N]) -> P(relevant) [users, N]
    judge: Callable[[list[np.ndarray], np.ndarray], np.ndarray] | None = None


# (user ids, item ids), one pair a candidate row -> those rows' FEATURE_GROUPS["stats"] columns
StatsLookup = Callable[[np.ndarray, np.ndarray], pd.DataFrame]


def candidates(model, data: SplitData, stage: str, n: int, batch_size: int = 256) -> Candidates:
    """The base model's top-n unseen items for every user with a held-out item at `stage`."""
    users, items, scores, unseen = top_unseen(model, data, stage, k=n, batch_size=batch_size)
    if (unseen < n).any():  # also when the catalogue itself has fewer than n items
        short = int(np.argmin(unseen))
        raise ValueError(
            f"user {data.users[users[short]]} has {unseen[short]} unseen items at {stage}, "
            f"fewer than the n={n} candidates the second stage re-ranks"
        )
    return Candidates(stage, users, items, scores)


def labels(cands: Candidates, data: SplitData) -> np.ndarray:
    """1 where the candidate is the user's held-out item at the candidates' stage."""
    return (cands.items == data.target(cands.stage)[cands.users][:, None]).astype(np.int32).ravel()


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0)


def _cosine_to_candidates(
    user_vectors: np.ndarray, item_vectors: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """cos(user row b, item items[b, j]) for every candidate, flattened [users * N]; 0 for a zero vector."""
    return np.einsum("bnd,bd->bn", _unit(item_vectors)[items], _unit(user_vectors)).ravel()


def feature_frame(
    cands: Candidates,
    histories: list[np.ndarray],
    sources: FeatureSources,
    groups: tuple[str, ...] = tuple(FEATURE_GROUPS),
    recent: int = 5,
) -> pd.DataFrame:
    """One row per (user, candidate), users in candidate order, candidates in the base model's order;
    `histories` are what each user had seen when the candidates were drawn; `recent_text_sim`
    compares the item with the last `recent` items of the history."""
    n_users, n = cands.items.shape
    frame = pd.DataFrame({"user": np.repeat(cands.users, n), "item": cands.items.ravel()})
    if "base" in groups:
        frame["base_score"] = cands.scores.ravel()
        frame["base_rank"] = np.tile(np.arange(n), n_users)
    if "stats" in groups:
        if sources.stats is None or len(sources.stats) != len(frame):
            raise ValueError(
                f"stats features: expected {len(frame)} rows aligned with the candidates, got "
                f"{None if sources.stats is None else len(sources.stats)}"
            )
        for column in FEATURE_GROUPS["stats"]:
            frame[column] = sources.stats[column].to_numpy(dtype=float)
    if "text" in groups:
        vectors = _require(sources.item_vectors, "text", "item profile vectors")
        frame["history_text_sim"] = _cosine_to_candidates(
            mean_vectors(vectors, histories), vectors, cands.items
        )
        recent_items = [h[-recent:] for h in histories]
        frame["recent_text_sim"] = _cosine_to_candidates(
            mean_vectors(vectors, recent_items), vectors, cands.items
        )
    if "user_profile" in groups:
        users = _require(sources.user_vectors, "user_profile", "user profile vectors")
        items = _require(sources.item_vectors, "user_profile", "item profile vectors")
        known = cands.users >= 0  # a user the model was not fitted with has no profile vector
        sim = _cosine_to_candidates(users[np.where(known, cands.users, 0)], items, cands.items)
        frame["user_profile_sim"] = np.where(np.repeat(known, n), sim, np.nan)
    if "judge" in groups:
        judge = _require(sources.judge, "judge", "a tuned judge")
        frame["judge_score"] = judge(histories, cands.items).ravel()
    return frame


def _require(value, group: str, what: str):
    if value is None:
        raise ValueError(
            f"feature group {group!r} needs {what}; leave the group out of TwoStageConfig.groups instead"
        )
    return value


def feature_columns(groups: tuple[str, ...]) -> list[str]:
    return [column for group in groups for column in FEATURE_GROUPS[group]]


def fit_ranker(frame: pd.DataFrame, y: np.ndarray, group_sizes: np.ndarray, config: TwoStageConfig):
    """LambdaMART on the groups that hold their positive (a group without one has no gradient)."""
    import lightgbm

    has_positive = np.add.reduceat(y, np.concatenate([[0], np.cumsum(group_sizes)[:-1]])) > 0
    rows = np.repeat(has_positive, group_sizes)
    if not has_positive.any():
        raise ValueError(
            "no user's held-out item is among the base model's candidates: nothing to learn from"
        )
    columns = feature_columns(config.groups)
    # the base model's order is a prior the few labels must not bend: higher score, higher rank
    monotone = [MONOTONE.get(column, 0) for column in columns]
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=config.n_estimators,
        monotone_constraints=monotone,
        learning_rate=config.learning_rate,
        num_leaves=config.num_leaves,
        min_child_samples=config.min_child_samples,
        random_state=config.seed,
        n_jobs=config.threads,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    ranker.fit(frame.loc[rows, columns], y[rows], group=group_sizes[has_positive])
    return ranker


def reranked_order(scores: np.ndarray, cands: Candidates) -> np.ndarray:
    """[users, N] positions of each user's candidates by the ranker's score (ties: the base model's
    order; small trees give many exact ties)."""
    n_users, n = cands.items.shape
    return np.lexsort((np.tile(np.arange(n), (n_users, 1)), -scores.reshape(n_users, n)), axis=1)


def reranked_topk(scores: np.ndarray, cands: Candidates) -> np.ndarray:
    """The candidates ordered by the ranker's score (ties: the base model's order), top 20 kept."""
    return np.take_along_axis(cands.items, reranked_order(scores, cands), axis=1)[:, :TOP_K]


def evaluate_reranked(
    ranker, frame: pd.DataFrame, cands: Candidates, data: SplitData, config: TwoStageConfig
) -> Evaluation:
    topk = reranked_topk(ranker.predict(frame[feature_columns(config.groups)]), cands)
    return Evaluation(
        cands.stage,
        metrics_from_topk(topk, data.target(cands.stage)[cands.users]),
        cands.users,
        topk,
    )


def cross_fitted(
    frame: pd.DataFrame, cands: Candidates, data: SplitData, config: TwoStageConfig
) -> tuple[Evaluation, np.ndarray]:
    """Out-of-fold scores: users in `config.folds` seeded folds, each scored by a ranker fitted on the
    others; the metrics a gate may compare with other models' valid figures. Also the scores."""
    y = labels(cands, data)
    n_users, n = cands.items.shape
    fold = np.random.default_rng(config.seed).permutation(n_users) % config.folds
    scores = np.zeros(n_users * n)
    for k in range(config.folds):
        inside = np.repeat(fold != k, n)
        ranker = fit_ranker(
            frame[inside].reset_index(drop=True), y[inside], cands.group_sizes[fold != k], config
        )
        scores[~inside] = ranker.predict(frame.loc[~inside, feature_columns(config.groups)])
    topk = reranked_topk(scores, cands)
    return Evaluation(
        cands.stage,
        metrics_from_topk(topk, data.target(cands.stage)[cands.users]),
        cands.users,
        topk,
    ), scores


class TwoStage:
    """The base model and the fitted ranker as one recommender: `score_all` gives each user's top-N
    base candidates the ranker's scores and every other item -inf, so the protocol's evaluation and
    the serving code rank it like any other model. The Feast stats come from `stats`, which the
    caller binds to the moment it scores for (a batch date, the online store); the LLM vectors and
    the judge travel inside the model."""

    name = "two_stage"
    Config = TwoStageConfig

    def __init__(
        self,
        config: TwoStageConfig,
        base,
        ranker,
        item_vectors: np.ndarray | None,
        user_vectors: np.ndarray | None,
        judge_npz: bytes | None,
        users: np.ndarray,
        items: np.ndarray,
    ):
        self.config, self.base = config, base
        self.device = getattr(base, "device", "cpu")
        # a booster, not the sklearn wrapper: what model_to_string round-trips
        self.ranker = getattr(ranker, "booster_", ranker)
        self.item_vectors, self.user_vectors, self.judge_npz = item_vectors, user_vectors, judge_npz
        self.users, self.items = np.asarray(users, dtype=object), np.asarray(items, dtype=object)
        self.stats: StatsLookup | None = None
        self.judge = None
        if judge_npz is not None:
            probe, vectors, probe_items = Probe.read(io.BytesIO(judge_npz))
            index = {item: k for k, item in enumerate(probe_items)}
            to_probe = np.array([index.get(str(i), -1) for i in self.items])

            def judge(histories: list[np.ndarray], cands: np.ndarray) -> np.ndarray:
                known = [to_probe[h][to_probe[h] >= 0] for h in histories]
                return (
                    np.concatenate(
                        [
                            probe.candidate_scores(
                                vectors,
                                known[start : start + 256],
                                to_probe[cands[start : start + 256]],
                            )
                            for start in range(0, len(cands), 256)
                        ]
                    )
                    if len(cands)
                    else np.zeros(cands.shape)
                )

            self.judge = judge

    def sources(self, stats: pd.DataFrame | None = None) -> FeatureSources:
        return FeatureSources(
            stats=stats,
            item_vectors=self.item_vectors,
            user_vectors=self.user_vectors,
            judge=self.judge,
        )

    def candidates(self, users: np.ndarray, histories: list[np.ndarray]) -> Candidates:
        base_scores = self.base.score_all(users, histories).float()
        top = rank_top_k(
            base_scores, seen_mask(histories, len(self.items), base_scores.device), self.config.n
        )
        return Candidates(
            "serve",
            np.asarray(users),
            top.cpu().numpy(),
            torch.gather(base_scores, 1, top).cpu().numpy(),
        )

    def ranker_scores(self, cands: Candidates, histories: list[np.ndarray]) -> np.ndarray:
        stats = None
        if "stats" in self.config.groups:
            if self.stats is None:
                raise ValueError(
                    "two_stage reads Feast stats (group 'stats'): bind TwoStage.stats to a lookup "
                    "(the nightly batch and the MLflow pyfunc do) before scoring"
                )
            n = cands.items.shape[1]
            user_ids = np.repeat(
                np.where(cands.users >= 0, self.users[np.maximum(cands.users, 0)], ""), n
            )
            stats = self.stats(user_ids, self.items[cands.items.ravel()])
        frame = feature_frame(cands, histories, self.sources(stats), self.config.groups)
        return self.ranker.predict(frame[feature_columns(self.config.groups)])

    @torch.no_grad()
    def score_all(self, users: np.ndarray, histories: list[np.ndarray]) -> torch.Tensor:
        cands = self.candidates(users, histories)
        raw = self.ranker_scores(cands, histories)
        order = reranked_order(raw, cands)
        ranked = np.take_along_axis(raw.reshape(cands.items.shape), order, axis=1).astype(
            np.float32
        )
        for j in range(
            1, ranked.shape[1]
        ):  # ties one float step apart, in the base order: any top-k agrees
            ranked[:, j] = np.minimum(
                ranked[:, j], np.nextafter(ranked[:, j - 1], np.float32(-np.inf))
            )
        scores = torch.full((len(users), len(self.items)), float("-inf"))
        scores.scatter_(
            1,
            torch.from_numpy(np.take_along_axis(cands.items, order, axis=1)),
            torch.from_numpy(ranked),
        )
        return scores

    def state(self) -> dict:
        return {
            "base": {
                "kind": self.base.name,
                "config": asdict(self.base.config),
                **self.base.state(),
            },
            "ranker": self.ranker.model_to_string(),
            "item_vectors": self.item_vectors,
            "user_vectors": self.user_vectors,
            "judge_npz": self.judge_npz,
        }

    @classmethod
    def from_state(cls, config: TwoStageConfig, saved: dict) -> TwoStage:
        """`saved["base"]` is the base model, already loaded (catalog.from_saved does that)."""
        import lightgbm

        return cls(
            config,
            saved["base"],
            lightgbm.Booster(model_str=saved["ranker"]),
            saved["item_vectors"],
            saved["user_vectors"],
            saved["judge_npz"],
            saved["users"],
            saved["items"],
        )
