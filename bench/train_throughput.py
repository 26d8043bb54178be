"""Training throughput of SASRec / LLM-SASRec: sequences per second on CPU (1 and 2 threads) and on
CUDA when present, with ratios against 1 CPU thread measured in the same run.

    make demo
    .venv/bin/python bench/train_throughput.py [--home .reclake] [--epochs 3] [--model sasrec]

A "sequence" is one training window (up to max_len + 1 items of one user's train history); every
position in it is a next-item prediction with a softmax over all items. Only the optimizer steps are
timed (no validation), after one warm-up epoch.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from models.recsys.base import seed_everything
from models.recsys.catalog import LLMSASRec, SASRec
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import item_text_columns, text_vectors
from models.recsys.sasrec import training_windows
from orchestration.core.paths import Lake
from orchestration.core.warehouse import load_splits


def measure(
    data: SplitData, home: Path, model_name: str, device: str, epochs: int
) -> tuple[float, int]:
    if model_name == "llm_sasrec":
        config = LLMSASRec.Config(device=device)
        items = pd.read_parquet(Lake(home).embeddings("items"))
        model = LLMSASRec(
            config,
            item_text=text_vectors(
                data.items, items, "item_id", item_text_columns(config.item_text)
            )[0],
        )
    else:
        model = SASRec(SASRec.Config(device=device))
    rng = seed_everything(0)
    model.net = model.build_net(data.n_items).to(model.device)
    known = model.start_known_items(data)
    windows, owners = training_windows(data.train, model.config.max_len)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=model.config.lr)
    model._train_epoch(windows, owners, optimizer, rng, known)  # warm-up (allocations, kernels)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for _ in range(epochs):
        model._train_epoch(windows, owners, optimizer, rng, known)
    sync()
    return len(windows) * epochs / (time.perf_counter() - started), len(windows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path(".reclake"))
    parser.add_argument(
        "--splits", type=Path, default=None, help="a parquet export of `splits` (no DuckDB needed)"
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", choices=["sasrec", "llm_sasrec"], default="sasrec")
    args = parser.parse_args()
    data = (
        SplitData.from_splits(pd.read_parquet(args.splits))
        if args.splits
        else load_splits(Lake(args.home).warehouse)[0]
    )

    settings = [("cpu", 1), ("cpu", 2)] + ([("cuda", 0)] if torch.cuda.is_available() else [])
    baseline = None
    print(
        f"{args.model}: {data.n_users} users, {data.n_items} items, {args.epochs} timed epochs per setting"
    )
    for device, threads in settings:
        if threads:
            torch.set_num_threads(threads)
        rate, windows = measure(data, args.home, args.model, device, args.epochs)
        baseline = baseline or rate
        label = (
            f"{device} ({threads} thread{'s' if threads > 1 else ''})"
            if threads
            else torch.cuda.get_device_name()
        )
        print(
            f"  {label:<34} {rate:9.1f} sequences/s  ({windows} windows/epoch)  ratio vs cpu-1: {rate / baseline:6.2f}"
        )
    if not torch.cuda.is_available():
        print(
            "  cuda: not available on this machine (run the same command on a GPU host for the CUDA ratio)"
        )


if __name__ == "__main__":
    main()
