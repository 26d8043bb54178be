"""Benchmark: the tuned judge (models/evaluation/judge_probe.py) by reader and item card, chosen on VALID,
confirmed on TEST, against the same probe without an LLM and against popularity.

    .venv/bin/python bench/judge_probe_variants.py [--users 200] [--readers minilm smollm2-135m qwen2.5-coder-0.5b]
                                                   [--threads 2] [--seed 0]

Every variant is the same probe (ProbeConfig defaults, fitted on the train split only) over other item
vectors: `minilm` (the sentence encoder the pipeline already uses for text embeddings, not an LLM),
an LLM of the ladder (mean hidden state of its middle layer), `random` (vectors that carry no
content: what the probe learns from the training signal alone), or two joined
("minilm+smollm2-135m"). Cards: `title+genres` or
`title(year)+genres`. For each sampled user the candidates are the held-out item of the split and
10 random items the user never rated before it; the probe sees train (valid) or train + valid (test).
AUC with a 95% bootstrap interval over users, popularity's AUC on the same pairs, seconds to read the
cards and to fit. ML-100K and the models come from the data home's cache (RECLAKE_HOME).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from models.common.device import torch_threads
from models.common.stats import auc, auc_interval
from models.evaluation.cases import random_unseen
from models.evaluation.judge_cards import item_card_texts
from models.evaluation.judge_probe import ProbeConfig, fit_probe
from models.llm.embedded import load_embedded
from models.recsys.data import SplitData


def candidates(data: SplitData, stage: str, users: np.ndarray, seed: int, n_random: int = 10):
    rng = np.random.default_rng(seed)
    out = []
    for u, history in zip(users, data.histories(users, stage)):
        target = data.target(stage)[u]
        randoms = random_unseen(rng, data.n_items, np.append(history, target), n_random)
        out.append((u, history, np.append(target, randoms)))
    return out


def evaluate(probe, vectors, cases, popularity) -> dict:
    rows = []
    for u, history, items in cases:
        scores = probe.raw_scores(vectors, history, items)
        rows += [
            {
                "user_id": u,
                "role": "heldout" if k == 0 else "random",
                "score": float(s),
                "popularity": popularity[i],
            }
            for k, (i, s) in enumerate(zip(items, scores))
        ]
    frame = pd.DataFrame(rows)
    held, rand = frame[frame["role"] == "heldout"], frame[frame["role"] == "random"]
    return {
        "auc": round(auc(held["score"], rand["score"]), 3),
        "auc_ci": auc_interval(frame),
        "popularity_auc": round(auc(held["popularity"], rand["popularity"]), 3),
        "spearman_popularity": round(
            float(frame["score"].corr(frame["popularity"], method="spearman")), 3
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument(
        "--readers", nargs="+", default=["random", "minilm", "smollm2-135m", "qwen2.5-coder-0.5b"]
    )
    parser.add_argument("--cards", nargs="+", default=["title+genres", "title(year)+genres"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from llm_runtimes import home_ml100k  # bench/ is this script's folder

    cache, items, splits = home_ml100k()
    items = items.set_index("item_id")
    data = SplitData.from_splits(splits)
    popularity = data.train_counts()
    rng = np.random.default_rng(args.seed)
    users = {
        s: np.sort(
            rng.choice(
                data.eval_users(s), size=min(args.users, len(data.eval_users(s))), replace=False
            )
        )
        for s in ("valid", "test")
    }
    cases = {s: candidates(data, s, users[s], args.seed + 1) for s in ("valid", "test")}
    titles = [items.loc[i, "title"] for i in data.items]
    genres = [items.loc[i, "genres"] for i in data.items]
    card_sets = {
        "title+genres": item_card_texts(titles, [None] * len(titles), genres),
        "title(year)+genres": item_card_texts(
            titles,
            [pd.to_numeric(items.loc[i, "release_year"], errors="coerce") for i in data.items],
            genres,
        ),
    }
    backends: dict = {}

    def read(reader: str, card: str) -> np.ndarray:
        """Unit vectors of the cards by one reader; "a+b" joins two readers' vectors side by side."""
        if "+" in reader:
            return np.hstack([read(part, card) for part in reader.split("+")])
        if reader == "random":
            vectors = (
                np.random.default_rng(args.seed).normal(size=(data.n_items, 384)).astype(np.float32)
            )
        elif reader == "minilm":
            from models.text.embeddings import encode_texts

            vectors = encode_texts(card_sets[card])
        else:
            if reader not in backends:
                backends[reader] = load_embedded(
                    cache, model=reader, runtime="transformers", threads=args.threads
                )
            vectors = backends[reader].hidden_states(card_sets[card])
        return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)

    rows = []
    for reader in args.readers:
        for card in ["-"] if reader == "random" else args.cards:
            with torch_threads(args.threads):
                started = time.perf_counter()
                vectors = read(reader, card)
                read_s = time.perf_counter() - started
                started = time.perf_counter()
                probe, facts = fit_probe(vectors, data, ProbeConfig(seed=args.seed))
                fit_s = time.perf_counter() - started
            for stage in ("valid", "test"):
                rows.append(
                    {
                        "reader": reader,
                        "card": card,
                        "split": stage,
                        **evaluate(probe, vectors, cases[stage], popularity),
                        "read_s": round(read_s, 1),
                        "fit_s": round(fit_s, 1),
                        "dims": vectors.shape[1],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print("\n" + pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
