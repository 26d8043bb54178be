"""Benchmark: how faithful the LLM profiles are to their input, by prompt version (and model/runtime),
on the same ML-100K items and users, in one run.

    .venv/bin/python bench/profile_faithfulness.py [--items 40] [--users 40] [--variants v1 v1+verify v2+verify]
                                                   [--model smollm2-135m] [--runtime transformers] [--threads 2]
                                                   [--tokens 90/160 64/128]   # item/user max new tokens

Profiles are written exactly as the pipeline writes them (models.text.profiles.write_profiles: batched
greedy generation, cut to full sentences, with `+verify` stripped of sentences that claim what the
input does not hold, validated, one retry, else a template fallback) into a throw-away cache, then
measured by models.text.faithfulness: the share of profiles with a claim the input
does not support (numbers, ratings/awards, names), claims per profile, profiles ending mid-sentence,
and for users the precision of the genres they name against the user's top train genres. Also new
tokens, seconds and fallbacks. Items and users are seeded samples; users' inputs use TRAIN rows only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.common.device import torch_threads
from models.llm.cache import LLMCache
from models.llm.embedded import load_embedded
from models.text.faithfulness import faithfulness_report
from models.text.profile_inputs import item_profile_inputs, user_profile_inputs
from models.text.profiles import write_profiles

MAX_NEW_TOKENS = {"item": 90, "user": 160}  # the pipeline's defaults (RECLAKE_LLM_*_MAX_NEW_TOKENS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--variants", nargs="+", default=["v1", "v1+verify", "v2+verify"])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--runtime", default="transformers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tokens",
        nargs="+",
        default=[f"{MAX_NEW_TOKENS['item']}/{MAX_NEW_TOKENS['user']}"],
        help="item/user max new tokens, one run each",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="the pipeline's RECLAKE_LLM_BATCH_SIZE"
    )
    args = parser.parse_args()
    from llm_runtimes import home_ml100k  # bench/ is this script's folder

    cache, items, splits = home_ml100k()
    rng = np.random.default_rng(args.seed)
    item_sample = items[
        items["item_id"].isin(rng.choice(items["item_id"], args.items, replace=False))
    ]
    users = rng.choice(splits["user_id"].unique(), args.users, replace=False)
    train = splits[(splits["split"] == "train") & splits["user_id"].isin(users)]
    inputs = {"item": item_profile_inputs(item_sample), "user": user_profile_inputs(train, items)}
    genres = sorted({g for value in items["genres"].dropna() for g in value.split("|")})
    backend = load_embedded(
        cache,
        model=args.model,
        runtime=args.runtime,
        threads=args.threads,
        batch_size=args.batch_size,
    )
    rows = []
    with tempfile.TemporaryDirectory() as scratch, torch_threads(args.threads):
        for variant, tokens in ((v, t) for v in args.variants for t in args.tokens):
            limits = dict(zip(("item", "user"), map(int, tokens.split("/"))))
            version, verify = variant.split("+")[0], variant.endswith("+verify")
            for kind in ("item", "user"):
                started = time.perf_counter()
                frame, stats = write_profiles(
                    backend,
                    kind,
                    inputs[kind],
                    LLMCache(Path(scratch) / f"{variant}-{tokens.replace('/', '-')}.sqlite"),
                    limits[kind],
                    batch_size=args.batch_size,
                    log=lambda _: None,
                    template_name=f"{kind}_profile_{version}",
                    verify=verify,
                )
                report = faithfulness_report(frame, inputs[kind], kind, genres)
                words = frame.loc[frame["source"] == "llm", "profile"].str.split().str.len()
                rows.append(
                    {
                        "model": backend.model,
                        "variant": variant,
                        "max_new_tokens": limits[kind],
                        "kind": kind,
                        **{k: v for k, v in report.items() if k != "examples"},
                        "fallbacks": stats.fallback,
                        "sentences_dropped": stats.unsupported_sentences_dropped,
                        "mean_words": round(float(words.mean()), 1) if len(words) else None,
                        "new_tokens": stats.new_tokens,
                        "seconds": round(time.perf_counter() - started, 1),
                        "examples": report["examples"][:3],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print("\n" + pd.DataFrame(rows).drop(columns="examples").to_markdown(index=False))


if __name__ == "__main__":
    main()
