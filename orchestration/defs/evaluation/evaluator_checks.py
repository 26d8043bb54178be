"""The evaluators' own check on a data home (models/evaluation/evaluator_split.py): the judge's
and the simulator's recipes refitted on the evaluator split and scored on the lists that
`evaluator_split_lists` (training group) left in lake/evaluator_split/.

    check = check_judge(lake, data, data_version, judge, probe_judge, folder)   # None: no lists
    check = check_simulator(lake, data, data_version, judge, probe_path, folder)

The judge's refit goes to the night's judge folder, where the simulator's check picks it up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from models.evaluation.evaluator_split import (
    EvaluatorSplit,
    check_evaluator,
    evaluator_split,
    fit_choice_model,
    fit_judge,
    judge_item_scores,
    simulator_item_scores,
)
from models.evaluation.judge_probe import dump
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.simulator_choosers import CHOICE_NEGATIVES
from orchestration.core.files import atomic_file
from orchestration.core.resources import LakeResource
from orchestration.defs.evaluation.tuned_judge import probe_config

EVALUATOR_JUDGE = "evaluator_judge.npz"  # beside the night's judge summary.json


def evaluator_lists(
    lake: LakeResource, split: EvaluatorSplit, data, data_version: str
) -> tuple[dict[str, list[list[int]]], dict[str, float], str] | str:
    """The lists evaluator_split_lists wrote for this data version, in `split.users` order as item
    indices, each model's leave-one-out test NDCG@10 and the best refit; or why there are none."""
    report_path = lake.paths.evaluator_split("models.json")
    if not report_path.exists():
        return "no evaluator-split lists yet: materialize evaluator_split_lists"
    report = json.loads(report_path.read_text())
    if report["data_version"] != data_version:
        return (
            f"the evaluator-split lists are of data version {report['data_version']}, not "
            f"{data_version}: materialize evaluator_split_lists"
        )
    frame = pd.read_parquet(lake.paths.evaluator_split("systems.parquet"))
    frame = frame.sort_values(["system", "user_id", "rank"])
    index = {item: n for n, item in enumerate(data.items)}
    systems = {}
    for name, group in frame.groupby("system", sort=False):
        by_user = group.groupby("user_id")["item_id"].apply(list).to_dict()
        systems[name] = [
            [index[i] for i in by_user.get(str(data.users[u]), [])] for u in split.users
        ]
    offline = {name: m["test_ndcg_at_10"] for name, m in report["models"].items()}
    return systems, offline, report["best_model"]


def lists_version(lake: LakeResource) -> str | None:
    """The content hash of the evaluator-split lists' report (None before there are lists): part
    of the judge's and the simulator's memo config, so new lists re-run them. Not an asset dep: a
    dep never materialized (RECLAKE_PROTOCOLS=0) would count as changed on every run."""
    path = lake.paths.evaluator_split("models.json")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else None


def judge_vectors(probe_judge, data) -> np.ndarray:
    """The tuned judge's item vectors in `data.items` order (zeros for a film it has not read)."""
    vectors = np.zeros((data.n_items, probe_judge.vectors.shape[1]), probe_judge.vectors.dtype)
    for n, item in enumerate(data.items):
        if (row := probe_judge.index.get(str(item))) is not None:
            vectors[n] = probe_judge.vectors[row]
    return vectors


def _fit_judge(split, data, judge, probe_judge):
    return fit_judge(
        split,
        judge_vectors(probe_judge, data),
        probe_config(judge),
        n_users=judge.n_users,
        n_random=judge.n_random,
        seed=judge.seed,
    )


def check_judge(
    lake: LakeResource, data, data_version: str, judge, probe_judge, folder: Path, log=print
) -> dict | None:
    """The tuned judge's recipe refitted on the evaluator split (saved to `folder` for the
    simulator's check), checked on every model's list and both ladders; None, saying why, when
    there are no lists for this data."""
    split = evaluator_split(data)
    lists = evaluator_lists(lake, split, data, data_version)
    if isinstance(lists, str):
        log(f"judge not checked on the evaluator split: {lists}")
        (folder / EVALUATOR_JUDGE).unlink(missing_ok=True)  # no stale refit for the simulator
        return None
    systems, offline, best = lists
    fitted = _fit_judge(split, data, judge, probe_judge)
    with atomic_file(folder / EVALUATOR_JUDGE) as tmp:
        tmp.write_bytes(
            dump(fitted.probe, fitted.calibration, fitted.vectors, data.items, probe_config(judge))
        )
    check = check_evaluator(
        split, systems, judge_item_scores(fitted, split.prefix), "mean", offline
    )
    return {**check, "best_model": best}


def check_simulator(
    lake: LakeResource,
    data,
    data_version: str,
    judge,
    probe_path: Path,
    folder: Path | None,
    log=print,
) -> dict | None:
    """The tuned simulator's recipe (a judge refit, then the choice model) on the evaluator split,
    checked like the judge; the night's judge refit from `folder` when it is there."""
    split = evaluator_split(data)
    lists = evaluator_lists(lake, split, data, data_version)
    if isinstance(lists, str):
        log(f"simulator not checked on the evaluator split: {lists}")
        return None
    systems, offline, best = lists
    saved = folder / EVALUATOR_JUDGE if folder is not None else None
    fitted = (
        load_probe_judge(saved)
        if saved is not None and saved.exists()
        else _fit_judge(split, data, judge, load_probe_judge(probe_path))
    )
    model = fit_choice_model(split, fitted, CHOICE_NEGATIVES, judge.seed)
    scores = simulator_item_scores(model, split.prefix, data.items)
    return {**check_evaluator(split, systems, scores, "sum", offline), "best_model": best}
