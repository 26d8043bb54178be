"""Benchmark: do the evaluators (the tuned judge, the simulated users) tell a better list from a
worse one, or only a popular film from an obscure one?

    .venv/bin/python bench/evaluators.py --part negatives [--kinds random random,popularity_matched ...]

negatives: the judge probe fitted on TRAIN with each mix of training negatives, scored on every
VALID user's held-out film against three kinds of negatives (models/evaluation/negatives.py):
random unseen films, films of the same popularity decile, and the films the home's trained models
ranked in their top 10 from the train history (in-list). Each AUC has its 95% interval over users
and popularity's AUC on the same pairs. The item vectors are the judge's own (judge_probe's .npz),
so the data home (--home, default RECLAKE_HOME) must have judge_probe and the models materialized.

evaluators: the judge and the simulator refitted on the evaluator split with each mix of training
negatives, checked on the lists evaluator_split_lists wrote (materialize it first): both ladders,
verdict agreement over every pair of models, model order against offline NDCG@10.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models import registry
from models.evaluation.cases import random_unseen
from models.evaluation.evaluator_split import (
    check_evaluator,
    evaluator_split,
    fit_choice_model,
    fit_judge,
    judge_item_scores,
    simulator_item_scores,
)
from models.evaluation.judge_probe import ProbeConfig, fit_probe
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.negatives import auc_by_negatives, in_list, popularity_deciles
from models.evaluation.negatives import popularity_matched as matched
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import load_splits
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.evaluator_checks import evaluator_lists, judge_vectors


def read_judge_vectors(lake: LakeResource, data) -> np.ndarray:
    """The tuned judge's item vectors (hidden states + sentence encoder), in `data.items` order."""
    (path,) = sorted(lake.paths.judge_probe("*").parent.parent.glob("*/probe.npz"))
    return judge_vectors(load_probe_judge(path), data)


def model_lists(client, data, data_version: str, users, histories, k: int = 10) -> tuple:
    """Each registered model's top-k per user (item indices, `users` order) from `histories`."""
    index = {item: n for n, item in enumerate(data.items)}
    lists = {}
    for row in registry.latest_versions(client, data_version):
        if row["model_name"] == "two_stage":  # needs Feast features as of the history
            continue
        saved = registry.load_version(client, row["version"])
        frame = saved.recommend_histories(data.users[users], histories, k)
        by_user = {
            user: [index[i] for i in group.sort_values("rank")["item_id"]]
            for user, group in frame.groupby("user_id")
        }
        lists[row["model_name"]] = [by_user.get(data.users[u], []) for u in users]
    return lists, None


def negatives_frame(data, users, stage: str, lists: dict, n: int, seed: int) -> pd.DataFrame:
    """user_id, item (index), role: each user's held-out film and its three kinds of negatives."""
    rng = np.random.default_rng(seed)
    counts = data.train_counts()
    deciles = popularity_deciles(counts)
    rows = []
    for row, (u, history) in enumerate(zip(users, data.histories(users, stage))):
        target = int(data.target(stage)[u])
        seen = np.append(history, target)
        user_lists = [one[row] for one in lists.values()]
        kinds = {
            "heldout": [target],
            "random": random_unseen(rng, data.n_items, seen, n),
            "popularity_matched": matched(rng, deciles, target, seen, n),
            "in_list": in_list(user_lists, target, history),
        }
        rows += [
            {"user_id": data.users[u], "item": int(i), "role": role}
            for role, items in kinds.items()
            for i in items
        ]
    frame = pd.DataFrame(rows)
    frame["item_train_count"] = counts[frame["item"]]
    return frame


def negatives(args, lake: LakeResource) -> dict:
    data, data_version = load_splits(lake.warehouse_path)
    vectors = read_judge_vectors(lake, data)
    users = data.eval_users("valid")
    client = registry.connect(lake.paths.mlflow_dir)
    lists, _ = model_lists(client, data, data_version, users, data.histories(users, "valid"))
    frame = negatives_frame(data, users, "valid", lists, n=10, seed=args.seed)
    histories = dict(zip(users, data.histories(users, "valid")))
    by_user = {data.users[u]: u for u in users}
    out = {"valid_users": len(users), "in_list_models": sorted(lists), "variants": {}}
    for mix in args.kinds:
        config = ProbeConfig(seed=args.seed, negative_kinds=tuple(mix.split(",")))
        started = time.perf_counter()
        probe, facts = fit_probe(vectors, data, config)
        fit_s = time.perf_counter() - started
        scores = np.empty(len(frame))
        for user, rows in frame.groupby("user_id").indices.items():
            items = frame["item"].to_numpy()[rows]
            scores[rows] = probe.raw_scores(vectors, histories[by_user[user]], items)
        result = auc_by_negatives(frame.assign(score=scores))
        out["variants"][mix] = {"auc_by_negatives": result, "fit_s": round(fit_s, 1), **facts}
        print(
            mix,
            {k: (v["auc"], v["ci"], v["popularity_auc"]) for k, v in result.items()},
            flush=True,
        )
    return out


def evaluators(args, lake: LakeResource) -> dict:
    """Both evaluators fitted on the evaluator split, checked on its held-out events: ladders,
    verdict agreement over every pair of model versions, model order against offline NDCG@10."""
    data, data_version = load_splits(lake.warehouse_path)
    vectors = read_judge_vectors(lake, data)
    split = evaluator_split(data, n_heldout=args.heldout)
    lists = evaluator_lists(lake, split, data, data_version)
    if isinstance(lists, str):
        raise SystemExit(lists)
    systems, offline, best = lists
    out = {"users": len(split.users), "heldout_events": args.heldout, "best_model": best}
    for mix in args.kinds:
        started = time.perf_counter()
        config = ProbeConfig(seed=args.seed, negative_kinds=tuple(mix.split(",")))
        judge = fit_judge(split, vectors, config, n_users=200, n_random=10, seed=args.seed)
        fit_s = time.perf_counter() - started
        scores = {"judge": (judge_item_scores(judge, split.prefix), "mean")}
        out[mix] = {"fit_s": round(fit_s, 1), "choice_weights": {}}
        for negatives in args.choice_negatives:
            kinds = None if negatives == "every" else expand(negatives)
            model = fit_choice_model(split, judge, kinds, args.seed)
            out[mix]["choice_weights"][negatives] = model.weights.round(3).tolist()
            items = simulator_item_scores(model, split.prefix, data.items)
            scores[f"simulator[{negatives}]"] = (items, "sum")
        for name, (item_scores, aggregate) in scores.items():
            check = check_evaluator(split, systems, item_scores, aggregate, offline)
            out[mix][name] = check
            if args.plots:
                label = "mean P(relevant)" if aggregate == "mean" else "P(picks from the list)"
                chart = args.plots / f"{mix.replace(',', '+')}_{name}_ladders.png"
                plots.ladders(check, chart, name, label)
            print(
                f"{mix} {name}: ladder tau {check['ladder_tau']}, agreement "
                f"{check['verdict_truth_agreement']} {check['verdict_truth_ci']} over "
                f"{check['n_decisive']} cases, tau vs NDCG {check['tau_vs_offline_ndcg']}",
                flush=True,
            )
    return out


def expand(spec: str) -> tuple[str, ...]:
    """ "popular*5,similar*5" -> five of each."""
    kinds = []
    for part in spec.split(","):
        kind, _, times = part.partition("*")
        kinds += [kind] * int(times or 1)
    return tuple(kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["negatives", "evaluators"], default="evaluators")
    parser.add_argument("--heldout", type=int, default=10, help="events held out per user")
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=[
            "random",
            "popularity_matched",
            "random,popularity_matched",
            "random,popularity_matched,popular",
        ],
        help="mixes of training negatives (comma-joined ProbeConfig.negative_kinds)",
    )
    parser.add_argument(
        "--choice-negatives",
        nargs="+",
        default=["every"],
        help="the simulator's choice model fitted against every film, or sampled kinds "
        "('popularity_matched*5,popular*5')",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plots", type=Path, default=None, help="write the ladder plots here")
    parser.add_argument("--home", default=os.environ.get("RECLAKE_HOME", ".reclake"))
    args = parser.parse_args()
    lake = LakeResource(home=args.home)
    part = negatives if args.part == "negatives" else evaluators
    print(json.dumps(part(args, lake), indent=1))


if __name__ == "__main__":
    main()
