"""Benchmark: what the poisoning defence (RECLAKE_TRAIN_POISONING_DEFENCE, on by default) costs on
clean data: each model trained with and without the users `suspicious_users` flags, same seeds,
evaluated on the full split (the protocol does not change).

    make demo                                    # the splits (and lake/embeddings for llm_sasrec)
    .venv/bin/python bench/defence_cost.py [--home .reclake] [--models sasrec llm_sasrec] [--seeds 0 1 2]

The flagged users come from models.robustness.poisoning_detector.detect with the asset's
DetectorConfig, on the TRAIN part of the split, as `suspicious_users` computes them. Prints each
run, then mean ± std of test and valid NDCG@10 per model and setting, and the ratio defended /
undefended of the test means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from models.recsys.metrics import evaluate
from models.robustness.poisoning_detector import DetectorConfig, detect
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env
from orchestration.core.warehouse import load_splits


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--models", nargs="+", default=["sasrec", "llm_sasrec"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    from model_quality import build  # bench/ is this script's folder

    lake = Lake(args.home or home_from_env())
    data, _ = load_splits(lake.warehouse)
    report = detect(data, DetectorConfig())
    flagged = np.flatnonzero(
        np.isin(data.users, report.loc[report["flagged"], "user_id"].to_numpy())
    )
    print(f"{len(flagged)} of {data.n_users} users flagged", flush=True)
    runs = []
    for spec in args.models:
        for seed in args.seeds:
            for defended in (False, True):
                started = time.perf_counter()
                model = build(spec, seed, data, lake.home, None)
                model.fit(data.without_users(flagged) if defended else data, log=lambda _: None)
                runs.append(
                    {
                        "model": spec,
                        "seed": seed,
                        "defence": defended,
                        "valid_ndcg@10": evaluate(model, data, "valid").metrics["ndcg@10"],
                        "test_ndcg@10": evaluate(model, data, "test").metrics["ndcg@10"],
                        "seconds": round(time.perf_counter() - started),
                    }
                )
                print(json.dumps(runs[-1]), flush=True)
    print(
        "\n| model | defence | valid NDCG@10 | test NDCG@10 | test defended / undefended |\n|---|---|---|---|---|"
    )
    for spec in args.models:
        means = {}
        for defended in (False, True):
            rows = [r for r in runs if r["model"] == spec and r["defence"] == defended]
            cells = []
            for key in ("valid_ndcg@10", "test_ndcg@10"):
                values = [r[key] for r in rows]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
            means[defended] = statistics.mean(r["test_ndcg@10"] for r in rows)
            ratio = f"{means[True] / means[False]:.3f}" if defended else ""
            print(f"| {spec} | {'on' if defended else 'off'} | {cells[0]} | {cells[1]} | {ratio} |")


if __name__ == "__main__":
    main()
