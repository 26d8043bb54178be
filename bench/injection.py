"""Benchmark: prompt injection and visibility manipulation (issue #11) on more items and users than
the CI test (tests/test_injection.py), with the same functions (models/robustness/injection.py).

    .venv/bin/python bench/injection.py [--users 943] [--targets 8] [--judge-users 8] [--candidates 96]
                                        [--sweeps 2] [--seed 0] [--threads 1] [--ml100k DIR]

ML-100K and the embedded model come from the data home's cache (RECLAKE_HOME; fetched there once,
as `make demo` does), or ML-100K from --ml100k.

Trains a title-only LLM-SASRec on the first --users ML-100K users (leave-one-out split), optimizes
a strategic text sequence (STS) against each of --targets seeded items with 2-10 train
interactions, and prints each attack's mean rank gain and mean judge-score shift (SmolLM2-135M,
template profiles of --judge-users real users), before -> after sanitizing, beside the noise level
(the largest shift of a benign edit of similar length). The judge also sees the STS (transfer: it
was optimized against the ranker, not the judge).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.evaluation.judge import Judge
from models.llm.embedded import load_embedded
from models.recsys.data import SplitData, leave_one_out
from models.robustness.injection import (
    judge_shifts,
    noise_level,
    pick_targets,
    rank_shifts,
    table,
    title_model,
    vocabulary_pool,
)
from models.text.embeddings import _encoder, encode_texts
from models.text.profile_inputs import user_profile_inputs
from models.text.profiles import fallback_profile
from orchestration.core.datasets import fetch_ml100k
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env


def ml100k(folder: Path, users: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions of the first `users` users split by the protocol, and the items table."""
    raw = pd.read_csv(folder / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    raw = raw[raw["user_id"].astype(int) <= users].assign(
        rating=lambda d: d["rating"].astype(float),
        event_ts=lambda d: pd.to_datetime(d["timestamp"].astype(int), unit="s"),
    )
    items = pd.read_csv(folder / "ml-100k.item", sep="\t", dtype=str)
    items = pd.DataFrame(
        {
            "item_id": items["item_id:token"],
            "title": items["movie_title:token_seq"],
            "genres": items["class:token_seq"].fillna("").str.replace(" ", "|"),
        }
    )
    return leave_one_out(raw), items


def summary(rows: list[dict], names: list[str]) -> str:
    noise = np.mean([noise_level(r["before"]) for r in rows])
    cells = ", ".join(
        f"{n} {np.mean([r['before'][n] for r in rows]):+.3g} -> {np.mean([r['after'][n] for r in rows]):+.3g}"
        for n in names
    )
    return f"mean over {len(rows)} items: {cells}; noise {noise:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--judge-users", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=96)
    parser.add_argument("--sweeps", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--ml100k",
        type=Path,
        help="folder with ml-100k.inter/.item (default: fetch into the cache)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cache = Lake(home_from_env()).cache

    splits, items = ml100k(args.ml100k or fetch_ml100k(cache), args.users)
    data = SplitData.from_splits(splits)
    titles = items.set_index("item_id")["title"]
    texts = [titles.get(i, f"item {i}") for i in data.items]
    model = title_model(data, texts, encode_texts, seed=args.seed)
    targets = pick_targets(data, args.targets, seed=args.seed)
    pool = vocabulary_pool(_encoder("cpu").tokenizer, seed=args.seed)
    ranks = rank_shifts(
        model,
        data,
        texts,
        targets,
        pool,
        encode_texts,
        length=8,
        sweeps=args.sweeps,
        candidates=args.candidates,
        seed=args.seed,
    )
    print(
        f"LLM-SASRec (title text) on {data.n_users} users x {data.n_items} items, seed {args.seed}: "
        f"mean rank gain over users who have not seen the item ({time.perf_counter() - started:.0f} s)"
    )
    print(table(ranks, "rank places"))
    for row in ranks:
        print(
            f"  STS {row['item_id']} {row['title']!r}: {row['sts']!r} (clean mean rank {row['clean_mean_rank']:.0f})"
        )
    print(summary(ranks, ["instruction", "data_break", "chat_template", "sts"]))

    judge_users = set(
        np.random.default_rng(args.seed).choice(data.users, args.judge_users, replace=False)
    )
    train = splits[(splits["split"] == "train") & splits["user_id"].isin(judge_users)]
    profiles = [fallback_profile("user", d) for _, d in user_profile_inputs(train, items)]
    genres = items.set_index("item_id")["genres"]
    cards = {r["item_id"]: {"genres": genres[r["item_id"]].replace("|", ", ")} for r in ranks}
    judge = Judge(load_embedded(cache, batch_size=8))
    judged = judge_shifts(judge, profiles, cards, {r["item_id"]: r["variants"] for r in ranks})
    print(
        f"\njudge {judge.name}: mean shift of the expected 1-5 rating over {len(profiles)} users "
        f"({time.perf_counter() - started:.0f} s)"
    )
    print(table(judged, "1-5 scale"))
    print(summary(judged, ["instruction", "data_break", "chat_template", "sts"]))


if __name__ == "__main__":
    main()
