"""Warm start vs full retrain, judged by the next day (issue #33, Build 3).

    .venv/bin/python bench/retraining.py --home /tmp/demo-home [--model sasrec] [--start 1998-02-22]
        [--nights 7] [--seed 0] [--threads 2] [--ml100k DIR]

Night by night from --start, with ML-100K's events of the days before it as leave-one-out splits
(what the pipeline trains on): a full retrain from scratch, and a warm start chained from the
previous night's warm model (the first night's full model starts the chain), the worst case of a
weekly-full policy. Each serves top-10 unseen items to the users with events the next day, scored
as served_outcomes scores them (hit@10 over the day's items new to the user). Prints the warm
model's hit@10 as a ratio of the full one's, paired over user-days with a bootstrap interval, and
the training time ratio. Item text vectors (new items' rows; LLM-SASRec's text map) come from
<home>/lake/embeddings/items.parquet, written by `make demo`.
"""

import argparse
import json
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from models.evaluation.outcomes import against_baseline, day_targets, new_items_on, score_lists
from models.recsys.catalog import MODELS
from models.recsys.data import SplitData, leave_one_out
from models.recsys.llm_sasrec import item_text_columns, text_vectors
from models.recsys.serving import SavedRecommender
from models.recsys.warm_start import RetrainPolicy, warm_start
from orchestration.core.paths import Lake
from orchestration.defs.training.retraining import item_vectors


def load_events(folder: Path) -> pd.DataFrame:
    frame = pd.read_csv(folder / "ml-100k.inter", sep="\t")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    frame = frame.rename(columns={"timestamp": "event_ts"}).astype(
        {"user_id": str, "item_id": str, "event_ts": np.int64}
    )
    frame["day"] = pd.to_datetime(frame["event_ts"], unit="s").dt.strftime("%Y-%m-%d")
    return frame[["user_id", "item_id", "event_ts", "day"]]


def build(name: str, seed: int, data: SplitData, vectors_frame: pd.DataFrame, budget: dict):
    cls = MODELS[name]
    config = cls.Config(seed=seed, **budget)
    if name == "llm_sasrec":
        vectors, _ = text_vectors(
            data.items, vectors_frame, "item_id", item_text_columns(config.item_text)
        )
        return cls(config, item_text=vectors)
    return cls(config)


def serve(model, data: SplitData, users: set[str]) -> pd.DataFrame:
    saved = SavedRecommender(model, data.users, data.items, data.full_histories())
    return saved.recommend(sorted(users & set(data.users)), k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("RECLAKE_HOME", ".reclake"))
    parser.add_argument("--model", choices=("sasrec", "llm_sasrec"), default="sasrec")
    parser.add_argument("--start", default="1998-02-22")
    parser.add_argument("--nights", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ml100k", default=os.environ.get("RECLAKE_DATA_DIR"))
    parser.add_argument("--max-epochs", type=int, help="a smoke run's budget, not for figures")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.ml100k:
        folder = Path(args.ml100k)
    else:
        from orchestration.core.datasets import fetch_ml100k

        folder = fetch_ml100k(Path(tempfile.gettempdir()))
    events = load_events(folder)
    items_path = Lake(Path(args.home)).embeddings("items")
    vectors_frame = pd.read_parquet(items_path)
    policy = RetrainPolicy()
    budget = {"max_epochs": args.max_epochs} if args.max_epochs else {}
    start = date.fromisoformat(args.start)
    nights = [(start + timedelta(days=n)).isoformat() for n in range(args.nights + 1)]

    def split_before(day: str) -> SplitData:
        return SplitData.from_splits(leave_one_out(events[events["day"] < day]))

    data = split_before(nights[0])
    warm = build(args.model, args.seed, data, vectors_frame, budget)
    warm.fit(data, log=lambda _: None)
    warm_items, rows, nightly = data.items, [], []
    for previous_night, night in zip(nights, nights[1:]):
        data = split_before(night)
        full = build(args.model, args.seed, data, vectors_frame, budget)
        full_fit = full.fit(data, log=lambda _: None)
        changed = np.flatnonzero(
            np.isin(data.users, events.loc[events["day"] == previous_night, "user_id"].unique())
        )
        warmed = build(args.model, args.seed, data, vectors_frame, budget)
        vectors, _ = item_vectors(
            warmed, items_path, data
        )  # as the pipeline's warm start reads them
        warm_fit = warm_start(
            warmed, warm, warm_items, data, changed, vectors, policy, log=lambda _: None
        )
        warm, warm_items = warmed, data.items
        today = events[events["day"] == night]
        before = events[events["day"] < night]
        targets = day_targets(today, before[["user_id", "item_id"]])
        new_items = new_items_on(before.groupby("item_id")["day"].min(), night)
        for label, model in (("full", full), ("warm", warm)):
            lists = serve(model, data, set(targets["user_id"])).assign(
                model_name=label, model_version=night, role="shadow"
            )
            rows.append(score_lists(lists, targets, new_items).assign(date=night))
        nightly.append(
            {
                "night": night,
                "changed_users": len(changed),
                "full_seconds": round(full_fit.seconds, 1),
                "full_epochs": len(full_fit.epochs),
                "warm_seconds": round(warm_fit.seconds, 1),
                "warm_best_epoch": warm_fit.best_epoch,
            }
        )
        print(json.dumps(nightly[-1]), flush=True)
    per_user = pd.concat(rows, ignore_index=True)
    comparison = against_baseline(per_user, "full")
    times = pd.DataFrame(nightly)
    print(
        json.dumps(
            {
                "model": args.model,
                "seed": args.seed,
                "nights": f"{nights[1]}..{nights[-1]}",
                "user_days": int((per_user["model_name"] == "full").sum()),
                "policy": vars(policy),
                "next_day": comparison,
                "warm_over_full_seconds": round(
                    float(times["warm_seconds"].sum() / times["full_seconds"].sum()), 4
                ),
                "full_seconds_mean": round(float(times["full_seconds"].mean()), 1),
                "warm_seconds_mean": round(float(times["warm_seconds"].mean()), 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
