"""Benchmark (issue #34, Build 3): what the LLM adds for films no model trained on.

    make demo        # then materialize cold_item_splits and item_text_embeddings (docs/recommenders.md)
    .venv/bin/python bench/cold_items_ablation.py [--home H] [--seeds 0 1 2] [--texts card llm]
        [--models sasrec llm_sasrec] [--protocol cold|loo]

LLM-SASRec (with the neighbour rows chosen on pseudo-cold valid) and the content retriever, refit on
`cold_item_splits` with four item texts, beside ID-only SASRec:
  card      the card (title, year, genres) through the sentence encoder (all-MiniLM-L6-v2)
  profile   the LLM-written profile through the sentence encoder
  llm       the profile LLM's own hidden states of the card (llm_card_embedding, the judge probe's reader)
  shuffled  the card vectors of other films (a control: text that says nothing of the film)
  title+profile  the pipeline's default map (title and profile sentence vectors)
`--neighbours llm` finds an untrained film's nearest trained films (whose row it borrows) by the
LLM's card vectors while the model maps the row's own text (the pipeline's default split of roles).
Test HR@10 on the cold films with a 95% interval over users, and each row's ratio to the card row of
its model on the same users. Selection is on valid only. `--protocol loo` refits the same rows on
the leave-one-out `splits` instead (what a text costs on films everyone has rated: test NDCG@10 and
its ratio to SASRec, paired over users). Writes <home>/lake/reports/cold_items_ablation[_loo].json
and prints it as a table.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from models.common.device import torch_threads
from models.common.stats import ratio_interval
from models.evaluation.cold_items import cold_item_report
from models.evaluation.refit import refit
from models.recsys.content_retriever import ContentRetriever
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import LLMSASRec, item_text_columns, text_vectors
from models.recsys.sasrec import SASRec
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env
from orchestration.core.warehouse import SPLIT_COLUMNS, catalog_items, load_splits, query

TEXTS = ("card", "profile", "llm", "shuffled", "title+profile")
MODELS = ("sasrec", "content_retriever", "llm_sasrec")


def item_vectors(home: Path, data: SplitData) -> dict:
    """Each text's [n_items, d] vectors in data.items order, from item_text_embeddings."""
    stored = pd.read_parquet(Lake(home).embeddings("items"))
    vectors = {
        text: text_vectors(data.items, stored, "item_id", item_text_columns(choice))[0]
        for text, choice in (
            ("card", "card"),
            ("profile", "profile"),
            ("llm", "llm_card"),
            ("title+profile", "title+profile"),
        )
    }
    shuffled = vectors["card"][np.random.default_rng(0).permutation(len(data.items))]
    return {**vectors, "shuffled": shuffled}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--texts", nargs="+", default=list(TEXTS), choices=TEXTS)
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=MODELS, help="the rows to refit"
    )
    parser.add_argument(
        "--neighbours",
        default=None,
        choices=TEXTS,
        help="LLM-SASRec: find an untrained film's nearest trained films by this text instead",
    )
    parser.add_argument("--protocol", default="cold", choices=("cold", "loo"))
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    home = args.home or home_from_env()
    warehouse = home / "warehouse.duckdb"
    if args.protocol == "cold":
        frame = query(warehouse, f"select {SPLIT_COLUMNS} from main.cold_item_splits")
        data = SplitData.from_splits(frame, cold_items=True, catalog=catalog_items(warehouse))
    else:
        data, _ = load_splits(warehouse)
    vectors = item_vectors(home, data)

    def sequential(cls, text=None):
        def build(seed):
            config = cls.Config(seed=seed, max_epochs=args.max_epochs)
            if text is None:
                return cls(config)
            neighbours = vectors[args.neighbours] if args.neighbours else None
            return cls(config, item_text=vectors[text], neighbour_text=neighbours)

        return build

    builders = {"sasrec": sequential(SASRec)} if "sasrec" in args.models else {}
    for text in args.texts:
        if "content_retriever" in args.models:
            builders[f"content_retriever[{text}]"] = lambda seed, text=text: ContentRetriever(
                ContentRetriever.Config(seed=seed), item_text=vectors[text]
            )
        if "llm_sasrec" in args.models:
            suffix = f"|{args.neighbours}" if args.neighbours else ""
            builders[f"llm_sasrec[{text}{suffix}]"] = sequential(LLMSASRec, text)
    with torch_threads(args.threads):
        runs = refit(builders, data, tuple(args.seeds), label=f"{args.protocol} ablation")
    references = ("sasrec", "content_retriever[card]", "llm_sasrec[card]")
    report = cold_item_report(runs, references)
    report["seeds"], report["protocol"] = args.seeds, args.protocol
    if args.protocol == "loo" and "sasrec" in builders:  # NDCG@10 against SASRec, paired over users
        ndcg = {n: [r.per_user_ndcg for r in runs if r.model_name == n] for n in builders}
        mean = {n: pd.concat(parts, axis=1).mean(axis=1) for n, parts in ndcg.items()}
        for name, row in report["models"].items():
            ratio, interval = ratio_interval(*mean[name].align(mean["sasrec"], join="inner"))
            row["ndcg_ratio_to_sasrec"], row["ndcg_ratio_to_sasrec_ci"] = ratio, interval
    suffix = "" if args.protocol == "cold" else "_loo"
    out = Lake(home).report(f"cold_items_ablation{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    table = pd.DataFrame([{"model": name, **row} for name, row in report["models"].items()])
    shown = ["model", "hit_at_10", "hit_std", "hit_ci", "ndcg_at_10", "valid_ndcg_at_10"]
    shown += ["train_seconds"]
    shown += [c for c in table.columns if c.startswith("ratio_to_") and not c.endswith("_ci")]
    print(table[shown].to_markdown(index=False))
    print(json.dumps({"report": str(out)}))


if __name__ == "__main__":
    main()
