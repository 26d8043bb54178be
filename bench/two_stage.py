"""Benchmark: the two-stage ranker (models/recsys/two_stage.py) over a base model's top-N, with its
feature groups added one at a time: the ablation table of docs/recommenders.md.

    make demo                                    # splits, Feast features, profiles, embeddings, judge_probe
    .venv/bin/python bench/two_stage.py [--home .reclake] [--base sasrec] [--seeds 0 1 2] [--n 50]

For each seed the base model is trained as the assets train it (selection on valid), then:
candidates = its top-N; labels = the VALID item; features = Feast `ranking_v1` stats as of just
before the held-out event (point in time), the LLM item/user profile vectors, the tuned judge's raw
score. Valid figures are cross-fitted over users (each user scored by a ranker that never saw their
label); test figures come from the ranker fitted on every user's valid candidates. A control
shuffles the LLM features among each user's candidates: a lift that survives it is not the LLM's.
Also: seconds to score every user with the base model alone vs base + features + ranker (ratio).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models import registry
from models.recsys.llm_sasrec import text_vectors
from models.recsys.metrics import evaluate
from models.recsys.two_stage import TwoStage
from models.recsys.two_stage_features import (
    FEATURE_GROUPS,
    LLM_GROUPS,
    candidates,
    feature_frame,
    labels,
)
from models.recsys.two_stage_ranker import (
    TwoStageConfig,
    cross_fitted,
    evaluate_reranked,
    fit_ranker,
)
from orchestration.core.feast import feature_store
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env
from orchestration.core.warehouse import held_out_moments, load_splits
from orchestration.defs.training.two_stage_inputs import candidate_stats

VARIANTS = {  # name -> feature groups
    "base features only": ("base",),
    "+ Feast stats (no LLM)": ("base", "stats"),
    "+ stats + LLM item-profile similarity": ("base", "stats", "text"),
    "+ stats + LLM user-profile similarity": ("base", "stats", "user_profile"),
    "+ stats + tuned judge score": ("base", "stats", "judge"),
    "+ LLM features, no Feast stats": ("base", "text", "user_profile", "judge"),
    "all (default)": tuple(FEATURE_GROUPS),
}


def shuffled_llm_features(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The control: each LLM column permuted among the same user's candidates."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    columns = [c for g in LLM_GROUPS for c in FEATURE_GROUPS[g] if c in frame]
    order = np.concatenate([start + rng.permutation(n) for start in range(0, len(frame), n)])
    out[columns] = frame[columns].to_numpy()[order]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--base", default="sasrec", help="a model spec of bench/model_quality.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--max-epochs", type=int, default=None)
    args = parser.parse_args()
    from model_quality import build  # bench/ is this script's folder

    lake = Lake(args.home or home_from_env())
    data, data_version = load_splits(lake.warehouse)
    store = feature_store(lake.home)
    items = pd.read_parquet(lake.embeddings("items"))
    users = pd.read_parquet(lake.embeddings("users"))
    item_vectors, _ = text_vectors(data.items, items, "item_id", ["profile_embedding"])
    user_vectors, _ = text_vectors(data.users, users, "user_id", ["profile_embedding"])
    _, probe_path = registry.latest_judge_probe(
        registry.connect(lake.mlflow_dir), data_version
    )  # as the asset reads it
    features = TwoStage(
        TwoStageConfig(),
        None,
        None,
        item_vectors,
        user_vectors,
        probe_path.read_bytes(),
        data.users,
        data.items,
    )  # only its feature sources are used here
    moments = {stage: held_out_moments(lake.warehouse, data, stage) for stage in ("valid", "test")}
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        base = build(args.base, seed, data, lake.home, args.max_epochs)
        base.fit(data, log=lambda _: None)
        base_test = evaluate(base, data, "test")
        base_valid = evaluate(base, data, "valid")
        print(
            f"seed {seed}: {args.base} trained in {time.perf_counter() - started:.0f} s, valid "
            f"{base_valid.metrics['ndcg@10']:.4f} test {base_test.metrics['ndcg@10']:.4f}",
            flush=True,
        )
        rows.append(
            {
                "seed": seed,
                "variant": f"{args.base} alone",
                "valid_ndcg@10": base_valid.metrics["ndcg@10"],
                "test_ndcg@10": base_test.metrics["ndcg@10"],
                "test_recall@10": base_test.metrics["recall@10"],
            }
        )
        stage_data = {}
        for stage in ("valid", "test"):
            t0 = time.perf_counter()
            cands = candidates(base, data, stage, args.n)
            t_cands = time.perf_counter() - t0
            sources = features.sources(candidate_stats(store, data, cands, moments[stage]))
            t1 = time.perf_counter()
            frame = feature_frame(cands, data.histories(cands.users, stage), sources)
            stage_data[stage] = (cands, frame)
            print(
                f"  {stage}: {len(cands.users)} users x {args.n} candidates in {t_cands:.1f} s, features "
                f"(Feast join {t1 - t0 - t_cands:.1f} s, the rest {time.perf_counter() - t1:.1f} s); held-out item "
                f"among them for {labels(cands, data).reshape(len(cands.users), -1).any(1).mean():.1%}",
                flush=True,
            )
        (valid_cands, valid_frame), (test_cands, test_frame) = (
            stage_data["valid"],
            stage_data["test"],
        )
        for name, groups in [
            *VARIANTS.items(),
            ("all, LLM features shuffled (control)", tuple(FEATURE_GROUPS)),
        ]:
            config = TwoStageConfig(groups=groups, seed=seed)
            shuffle = "control" in name
            vf = shuffled_llm_features(valid_frame, args.n, seed) if shuffle else valid_frame
            tf = shuffled_llm_features(test_frame, args.n, seed) if shuffle else test_frame
            t0 = time.perf_counter()
            valid_eval, _ = cross_fitted(vf, valid_cands, data, config)
            ranker = fit_ranker(vf, labels(valid_cands, data), valid_cands.group_sizes, config)
            test_eval = evaluate_reranked(ranker, tf, test_cands, data, config)
            rows.append(
                {
                    "seed": seed,
                    "variant": name,
                    "valid_ndcg@10": valid_eval.metrics["ndcg@10"],
                    "test_ndcg@10": test_eval.metrics["ndcg@10"],
                    "test_recall@10": test_eval.metrics["recall@10"],
                    "fit_seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    table = (
        pd.DataFrame(rows)
        .groupby("variant", sort=False)
        .agg(
            **{
                f"{m}": (
                    m,
                    lambda v: (
                        f"{statistics.mean(v):.4f} ± {statistics.stdev(v) if len(v) > 1 else 0:.4f}"
                    ),
                )
                for m in ("valid_ndcg@10", "test_ndcg@10", "test_recall@10")
            }
        )
    )
    base_mean = statistics.mean(
        r["test_ndcg@10"] for r in rows if r["variant"] == f"{args.base} alone"
    )
    table["test vs base"] = [
        f"{statistics.mean(r['test_ndcg@10'] for r in rows if r['variant'] == v) / base_mean - 1:+.1%}"
        for v in table.index
    ]
    print(
        f"\n{args.base}, top-{args.n} candidates, seeds {args.seeds} (valid cross-fitted over users)\n"
    )
    print(table.to_markdown())


if __name__ == "__main__":
    main()
