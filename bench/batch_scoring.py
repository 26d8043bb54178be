"""Batch scoring throughput: reclake's chunked scorer vs a raw torch loop on the same tensors.

    .venv/bin/python bench/batch_scoring.py [--users 100000] [--items 20000] [--chunk 1024] [--threads 2]

A synthetic SASRec (random weights, 20k items, histories of 5-200 items drawn Zipf-like) scores
every user. "reclake" is `SavedRecommender.iter_recommendations` (what batch_recommendations runs:
encode, score all items, mask seen items, top-K, build the output frame); "raw" is the bare loop
on the same model and chunks: encode -> hidden @ items.T -> masked_fill -> topk. Each runs in its
own process so its peak RSS is its own. Goal: reclake <= 1.5x raw.
"""

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import torch


def synthetic(users: int, items: int, seed: int = 0):
    from models.recsys.sasrec import SASRec, SASRecConfig
    from models.recsys.serving import SavedRecommender

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = SASRec(SASRecConfig())
    model.net = model.build_net(items).to(model.device).eval()
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity /= popularity.sum()
    lengths = rng.integers(5, 200, size=users)
    histories = [rng.choice(items, size=n, p=popularity) for n in lengths]
    user_ids = np.array([f"u{u}" for u in range(users)], dtype=object)
    return SavedRecommender(
        model, user_ids, np.array([f"i{i}" for i in range(items)], dtype=object), histories
    )


def run(kind: str, users: int, items: int, chunk: int, k: int, threads: int, queue) -> None:
    torch.set_num_threads(threads)
    from models.recsys.data import seen_mask
    from models.recsys.sasrec import left_pad, trim_padding

    recommender = synthetic(users, items)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    rows = 0
    if kind == "reclake":
        for frame in recommender.iter_recommendations(
            recommender.users, recommender.histories, k, chunk
        ):
            rows += len(frame)
    else:
        net = recommender.model.net
        with torch.no_grad():
            table = net.item_table()
            for start in range(0, users, chunk):
                histories = recommender.histories[start : start + chunk]
                seqs = torch.as_tensor(trim_padding(left_pad(histories, net.config.max_len)))
                hidden = net.encode(seqs, None, table)[:, -1]
                scores = (hidden @ table[1:].T).masked_fill(
                    seen_mask(histories, items), float("-inf")
                )
                rows += torch.topk(scores, k, dim=1).indices.numel()
    seconds = time.perf_counter() - started
    queue.put((kind, seconds, rows, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{args.users} users x {args.items} items, K={args.k}, chunks of {args.chunk}, {args.threads} threads, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )
    results = {}
    context = mp.get_context("spawn")
    for kind in ("raw", "reclake"):
        queue = context.Queue()
        process = context.Process(
            target=run, args=(kind, args.users, args.items, args.chunk, args.k, args.threads, queue)
        )
        process.start()
        results[kind] = queue.get()
        process.join()
        _, seconds, rows, before, peak = results[kind]
        print(
            f"  {kind:<8} {seconds:8.1f} s  {args.users / seconds:9.0f} users/s  {rows:,} rows  "
            f"peak RSS {peak / 1024:7.0f} MiB (model + histories: {before / 1024:.0f} MiB)"
        )
    ratio = results["reclake"][1] / results["raw"][1]
    print(
        f"  time ratio reclake/raw: {ratio:.2f} (goal <= 1.5)  "
        f"peak memory ratio: {results['reclake'][4] / results['raw'][4]:.2f}"
    )


if __name__ == "__main__":
    main()
