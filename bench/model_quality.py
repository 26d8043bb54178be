"""Model quality under the protocol: every recommender, several seeds, mean ± std on TEST.

    make demo                                    # the splits and the LLM/title vectors
    .venv/bin/python bench/model_quality.py [--home .reclake] [--seeds 0 1 2] [--threads 1]
        [--models popularity ease sasrec llm_sasrec:title llm_sasrec:profile llm_sasrec:title+profile
                  llm_sasrec:title+profile:user]

Reads `splits` and lake/embeddings/ from the data home; trains with the same code and defaults as
the Dagster assets (no MLflow); selection is on VALID only. Each run is appended to
<home>/lake/reports/model_quality_runs.jsonl (so two invocations on two cores can split the work);
the markdown table (also model_quality.md) is built from that file. The baseline for the lift is
`sasrec` with the same seeds. popularity and EASE are deterministic: their std is 0.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from models.recsys.catalog import MODELS
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import item_text_columns, text_vectors
from models.recsys.metrics import evaluate
from orchestration.core.paths import Lake
from orchestration.core.warehouse import load_splits

SHOWN = ("ndcg@10", "recall@10", "mrr@10", "ndcg@20", "recall@20")


def build(spec: str, seed: int, data: SplitData, home: Path, max_epochs: int | None):
    name, _, variant = spec.partition(
        ":"
    )  # e.g. llm_sasrec:title+profile or llm_sasrec:title+profile:user
    variant, _, user = variant.partition(":")
    cls = MODELS[name]
    budget = {"max_epochs": max_epochs} if max_epochs and name in ("sasrec", "llm_sasrec") else {}
    if name != "llm_sasrec":
        return cls(cls.Config(seed=seed, **budget))
    config = cls.Config(
        seed=seed, item_text=variant or "title+profile", use_user_profile=user == "user", **budget
    )
    items = pd.read_parquet(Lake(home).embeddings("items"))
    vectors, _ = text_vectors(data.items, items, "item_id", item_text_columns(config.item_text))
    user_vectors = None
    if config.use_user_profile:
        users = pd.read_parquet(Lake(home).embeddings("users"))
        user_vectors, _ = text_vectors(data.users, users, "user_id", ["profile_embedding"])
    return cls(config, item_text=vectors, user_text=user_vectors)


def summarize(runs: list[dict]) -> dict:
    out = {}
    for key in (*SHOWN, "valid_ndcg@10", "seconds_per_epoch", "epochs"):
        values = [r[key] for r in runs]
        out[key] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".reclake"))
    parser.add_argument(
        "--splits", type=Path, default=None, help="a parquet export of `splits` (no DuckDB needed)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="cap for the neural models (default: theirs)"
    )
    parser.add_argument(
        "--table-only", action="store_true", help="no training: the table from earlier runs"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=[
            "popularity",
            "ease",
            "sasrec",
            "llm_sasrec:title",
            "llm_sasrec:profile",
            "llm_sasrec:title+profile",
            "llm_sasrec:title+profile:user",
        ],
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = (
        SplitData.from_splits(pd.read_parquet(args.splits))
        if args.splits
        else load_splits(Lake(args.home).warehouse)[0]
    )
    print(
        f"{data.n_users} users, {data.n_items} items, seeds {args.seeds}, {args.threads} torch thread(s), "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )

    out = Lake(args.home).report("model_quality_runs.jsonl").parent
    out.mkdir(parents=True, exist_ok=True)
    runs_file = (
        out / "model_quality_runs.jsonl"
    )  # one line per (model, seed): parallel invocations append
    jobs = [] if args.table_only else [(spec, seed) for spec in args.models for seed in args.seeds]
    for spec, seed in tqdm(jobs, desc="training", unit="run"):
        model = build(spec, seed, data, args.home, args.max_epochs)
        started = time.perf_counter()
        fit = model.fit(data, log=lambda message: None)
        test = evaluate(model, data, "test").metrics
        run = {
            "model": spec,
            "seed": seed,
            **test,
            "valid_ndcg@10": fit.best_valid_ndcg10,
            "epochs": len(fit.epochs),
            "best_epoch": fit.best_epoch,
            "seconds_per_epoch": fit.seconds_per_epoch,
            "seconds": time.perf_counter() - started,
            "threads": args.threads,
            "trials": fit.trials,
        }
        with open(runs_file, "a") as handle:
            handle.write(json.dumps(run) + "\n")
        tqdm.write(
            f"{spec} seed {seed}: test NDCG@10 {test['ndcg@10']:.4f} (valid {fit.best_valid_ndcg10:.4f}, "
            f"{len(fit.epochs)} epochs, {fit.seconds_per_epoch:.1f} s/epoch)"
        )

    results: dict[str, dict[int, dict]] = {}
    for line in runs_file.read_text().splitlines():  # the latest line per (model, seed) counts
        run = json.loads(line)
        if run["model"] in args.models and run["seed"] in args.seeds:
            results.setdefault(run["model"], {})[run["seed"]] = run
    results = {spec: list(results[spec].values()) for spec in args.models if spec in results}
    summary = {spec: summarize(runs) for spec, runs in results.items()}
    base = summary.get("sasrec", {}).get("ndcg@10", (0.0, 0.0))[0]
    lines = [
        "| model | NDCG@10 | Recall@10 | MRR@10 | NDCG@20 | Recall@20 | valid NDCG@10 | s/epoch | epochs | vs sasrec |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, s in summary.items():
        cells = [f"{s[k][0]:.4f} ± {s[k][1]:.4f}" for k in (*SHOWN, "valid_ndcg@10")]
        lift = f"{(s['ndcg@10'][0] / base - 1) * 100:+.1f}%" if base else "-"
        lines.append(
            f"| {spec} | " + " | ".join(cells) + f" | {s['seconds_per_epoch'][0]:.2f} | "
            f"{s['epochs'][0]:.0f} | {lift} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    (out / "model_quality.md").write_text(table + "\n")
    print(f"\nwritten: {out / 'model_quality.md'} (runs: {runs_file})")


if __name__ == "__main__":
    main()
