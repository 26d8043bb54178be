"""The evaluators' own check on a data home (models/evaluation/evaluator_split.py): the systems a
judge or simulator is checked against, scored at each user's evaluator cut, written once by
judge_evaluations and read back by simulated_feedback.

    systems, offline = evaluator_systems(lake, client, data, data_version, split, seed)
    write_systems(systems, split, data, path); systems = read_systems(path, split, data)
    report = check_with(split, systems, offline, item_scores, "mean")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from models import registry
from models.evaluation.cases import random_unseen
from models.evaluation.evaluator_split import (
    EvaluatorSplit,
    check_evaluator,
    evaluator_split,
    fit_choice_model,
    fit_judge,
    judge_item_scores,
    ladders,
    simulator_item_scores,
)
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.negatives import top_unseen
from orchestration.core.files import write_parquet_atomic
from orchestration.defs.evaluation.tuned_judge import probe_config

# models whose saved recommender scores any history; the two-stage ranker needs Feast features as
# of the cut, which the online and offline stores do not hold: left out
SCORABLE = ("popularity", "ease", "sasrec", "llm_sasrec", "content_retriever")
K = 10
EVALUATOR_SYSTEMS = "evaluator_systems.parquet"  # beside the judge's summary.json


def model_lists(
    client, data, data_version: str, users: np.ndarray, histories: list[np.ndarray]
) -> tuple[dict[str, list[list[int]]], dict[str, dict]]:
    """Every scorable model's newest version on this data, scored from `histories` (its top 10 per
    user, item indices, in `users` order); and each one's row of valid/test metrics."""
    index = {item: n for n, item in enumerate(data.items)}
    systems, rows = {}, {}
    for row in registry.latest_versions(client, data_version):
        name = row["model_name"]
        if name not in SCORABLE:
            continue
        saved = registry.load_version(client, row["version"])
        frame = saved.recommend_histories(data.users[users], histories, K)
        by_user = {
            user: [index[i] for i in group.sort_values("rank")["item_id"] if i in index]
            for user, group in frame.groupby("user_id")
        }
        systems[name] = [by_user.get(data.users[u], []) for u in users]
        rows[name] = row
    return systems, rows


def evaluator_systems(
    client, data, data_version: str, split: EvaluatorSplit, seed: int
) -> tuple[dict[str, list[list[int]]], dict[str, float], str]:
    """Every scorable model scored from each user's history before the cut (`model_lists`), and
    the two ladders built on the best of them by valid NDCG@10 (popularity's top unseen films;
    random unseen films). Also each model's offline test NDCG@10 and the best model's name."""
    systems, rows = model_lists(client, data, data_version, split.users, split.prefix)
    offline = {name: row["test_ndcg_at_10"] for name, row in rows.items()}
    valid = {name: row["valid_ndcg_at_10"] for name, row in rows.items()}
    if len(systems) < 2:
        raise LookupError(
            f"{len(systems)} scorable model version(s) on data version {data_version}: the "
            "evaluators are checked on pairs of models; materialize the recommenders first"
        )
    best = max(valid, key=lambda name: np.nan_to_num(valid[name], nan=-1.0))
    rng = np.random.default_rng(seed)
    by_popularity = np.argsort(-split.fit.train_counts(), kind="stable")
    fillers = {
        "popular": [list(top_unseen(by_popularity, h, 2 * K)) for h in split.prefix],
        "random": [list(random_unseen(rng, data.n_items, h, 2 * K)) for h in split.prefix],
    }
    systems.update(ladders(systems[best], fillers, K))
    return systems, offline, best


def write_systems(systems: dict, split: EvaluatorSplit, data, path) -> None:
    """system, user_id, rank, item_id: every list the evaluators were checked on."""
    rows = {"system": [], "user_id": [], "rank": [], "item_id": []}
    for name, lists in systems.items():
        for u, items in zip(split.users, lists):
            rows["system"] += [name] * len(items)
            rows["user_id"] += [str(data.users[u])] * len(items)
            rows["rank"] += list(range(1, len(items) + 1))
            rows["item_id"] += [str(data.items[i]) for i in items]
    write_parquet_atomic(pa.table(rows), path)


def read_systems(path, split: EvaluatorSplit, data) -> dict[str, list[list[int]]]:
    """The lists `write_systems` wrote, back in `split.users` order as item indices."""
    frame = pd.read_parquet(path).sort_values(["system", "user_id", "rank"])
    index = {item: n for n, item in enumerate(data.items)}
    systems = {}
    for name, group in frame.groupby("system", sort=False):
        by_user = group.groupby("user_id")["item_id"].apply(list).to_dict()
        systems[name] = [
            [index[i] for i in by_user.get(str(data.users[u]), [])] for u in split.users
        ]
    return systems


def judge_vectors(probe_judge, data) -> np.ndarray:
    """The tuned judge's item vectors in `data.items` order (zeros for a film it has not read)."""
    vectors = np.zeros((data.n_items, probe_judge.vectors.shape[1]), probe_judge.vectors.dtype)
    for n, item in enumerate(data.items):
        if (row := probe_judge.index.get(str(item))) is not None:
            vectors[n] = probe_judge.vectors[row]
    return vectors


def check_judge(client, data, data_version: str, judge, probe_judge, path) -> dict:
    """The tuned judge's recipe refitted on the evaluator split, checked against every scorable
    model and both ladders (the lists written to `path` for the simulator's check)."""
    split = evaluator_split(data)
    fitted = fit_judge(
        split,
        judge_vectors(probe_judge, data),
        probe_config(judge),
        n_users=judge.n_users,
        n_random=judge.n_random,
        seed=judge.seed,
    )
    systems, offline, best = evaluator_systems(client, data, data_version, split, judge.seed)
    write_systems(systems, split, data, path)
    check = check_evaluator(
        split, systems, judge_item_scores(fitted, split.prefix), "mean", offline
    )
    return {**check, "best_model": best}


def check_simulator(
    client, data, data_version: str, judge, probe_path: Path, systems_path: Path | None
) -> dict:
    """The tuned simulator's recipe (the judge's probe, then the choice model) refitted on the
    evaluator split and checked like the judge, on the judge's lists when they were written."""
    split = evaluator_split(data)
    reader = load_probe_judge(probe_path)
    fitted = fit_judge(
        split,
        judge_vectors(reader, data),
        probe_config(judge),
        n_users=judge.n_users,
        n_random=judge.n_random,
        seed=judge.seed,
    )
    model = fit_choice_model(split, fitted)
    if systems_path is not None and systems_path.exists():
        systems, best = read_systems(systems_path, split, data), None
        offline = {
            row["model_name"]: row["test_ndcg_at_10"]
            for row in registry.latest_versions(client, data_version)
            if row["model_name"] in SCORABLE
        }
    else:
        systems, offline, best = evaluator_systems(client, data, data_version, split, judge.seed)
    scores = simulator_item_scores(model, split.prefix, data.items)
    return {**check_evaluator(split, systems, scores, "sum", offline), "best_model": best}
