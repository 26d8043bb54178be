"""Benchmark: the embedded LLM's two runtimes, llama.cpp (xllamacpp) vs transformers, on the same
model and the same prompts, for both of its uses, in one run.

    .venv/bin/python bench/llm_runtimes.py [--model smollm2-135m] [--items 32] [--users 12] [--threads 2]

(a) profile generation: --items ML-100K item prompts (item_profile_v1, greedy, 90 new tokens at
    most) through each runtime's `generate`; new tokens per second.
(b) choice scoring: the judge's pointwise prompt (judge_pointwise_v1) for --users users x 11 items
    (a template profile of the user's train history; the held-out item and 10 random unseen ones);
    prompts per second through `score_choices`, and how alike the two runtimes' expected ratings are.
Prints each ratio llama.cpp / transformers. The model and ML-100K come from the data home's cache
(RECLAKE_HOME), fetched there once as `make demo` does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from models.common.device import torch_threads
from models.evaluation.judge import RATINGS, expected_rating
from models.llm.embedded import load_embedded
from models.llm.templates import PromptTemplate
from models.recsys.data import leave_one_out
from models.text.profile_inputs import item_profile_inputs, user_profile_inputs
from models.text.profiles import fallback_profile
from orchestration.core.datasets import fetch_ml100k
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env


def ml100k_frames(cache) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = fetch_ml100k(cache)
    items = pd.read_csv(folder / "ml-100k.item", sep="\t", dtype=str)
    items.columns = ["item_id", "title", "release_year", "genres"]
    items["genres"] = items["genres"].str.replace(" ", "|")
    items["release_year"] = pd.to_numeric(items["release_year"], errors="coerce").astype(
        "Int64"
    )  # the file has "unkonwn"
    for column in ("tags", "description", "review_snippets"):
        items[column] = None
    inter = pd.read_csv(folder / "ml-100k.inter", sep="\t", dtype=str)
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    inter["rating"] = inter["rating"].astype(float)
    inter["event_ts"] = pd.to_datetime(inter["timestamp"].astype(int), unit="s")
    return items, leave_one_out(inter)


def home_ml100k():
    """(the data home's cache, ML-100K items, leave-one-out splits): what the LLM benches read."""
    cache = Lake(home_from_env()).cache
    return (cache, *ml100k_frames(cache))


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cache, items, splits = home_ml100k()

    generation = [
        PromptTemplate.load("item_profile_v1").messages(data)
        for _, data in item_profile_inputs(items)[: args.items]
    ]
    rng = np.random.default_rng(args.seed)
    users = sorted(rng.choice(splits["user_id"].unique(), size=args.users, replace=False), key=int)
    train = splits[(splits["split"] == "train") & splits["user_id"].isin(users)]
    profiles = {u: fallback_profile("user", data) for u, data in user_profile_inputs(train, items)}
    card = {
        r.item_id: {"title": r.title, "genres": r.genres.replace("|", ", ")}
        for r in items.itertuples()
    }
    judge_template = PromptTemplate.load("judge_pointwise_v1")
    scoring = []
    for user in users:
        seen = set(splits.loc[splits["user_id"] == user, "item_id"])
        heldout = splits.loc[
            (splits["user_id"] == user) & (splits["split"] == "test"), "item_id"
        ].iloc[0]
        randoms = rng.choice(sorted(set(items["item_id"]) - seen, key=int), size=10, replace=False)
        scoring += [
            judge_template.messages({"user": profiles[user], "item": card[i]})
            for i in [heldout, *randoms]
        ]

    print(
        f"model {args.model}, {args.threads} threads; (a) {len(generation)} item prompts, <= {args.max_new_tokens} "
        f"new tokens; (b) {len(scoring)} judge prompts ({args.users} users x 11 items)"
    )
    results = {}
    for runtime in ("transformers", "llamacpp"):
        with torch_threads(args.threads):
            backend, load_s = timed(
                lambda: load_embedded(
                    cache,
                    model=args.model,
                    runtime=runtime,  # noqa: B023 (called at once by timed)
                    batch_size=16,
                    threads=args.threads,
                    log=lambda _: None,
                )
            )
            backend.generate(generation[:2], 8)  # warm-up
            loaded = backend
            texts, gen_s = timed(lambda: loaded.generate(generation, args.max_new_tokens))  # noqa: B023
            scores, score_s = timed(lambda: loaded.score_choices(scoring, RATINGS))  # noqa: B023
        tokens = sum(t.new_tokens for t in texts)
        results[runtime] = {
            "tokens_per_s": tokens / gen_s,
            "prompts_per_s": len(scoring) / score_s,
            "ratings": np.array([expected_rating(s) for s in scores]),
        }
        print(
            f"{runtime:>12}: load {load_s:5.1f} s | (a) {tokens} new tokens in {gen_s:6.1f} s = "
            f"{tokens / gen_s:6.1f} tokens/s | (b) {len(scoring)} prompts in {score_s:6.1f} s = "
            f"{len(scoring) / score_s:6.2f} prompts/s"
        )
        del backend
    fast, slow = results["llamacpp"], results["transformers"]
    rho = pd.Series(fast["ratings"]).corr(pd.Series(slow["ratings"]), method="spearman")
    print(
        f"ratio llama.cpp / transformers: (a) generation {fast['tokens_per_s'] / slow['tokens_per_s']:.2f}x, "
        f"(b) choice scoring {fast['prompts_per_s'] / slow['prompts_per_s']:.2f}x; "
        f"Spearman of the two runtimes' expected ratings {rho:.3f}"
    )


if __name__ == "__main__":
    main()
