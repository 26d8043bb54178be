"""Two-stage ranking: a base recommender's top-N candidates re-scored by LightGBM's LambdaMART over
point-in-time stats (Feast's `ranking_v1`) and LLM-derived features. This module holds the fitted
pair as a recommender (`TwoStage`); the candidates and their features are two_stage_features.py,
the ranker's settings, fitting and out-of-fold scores two_stage_ranker.py.

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
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch

from models.recsys.data import seen_mask
from models.recsys.metrics import rank_top_k
from models.recsys.pair_probe import Probe
from models.recsys.two_stage_features import (
    Candidates,
    FeatureSources,
    StatsLookup,
    feature_columns,
    feature_frame,
)
from models.recsys.two_stage_ranker import TwoStageConfig, reranked_order


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
