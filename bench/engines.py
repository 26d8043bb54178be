"""DuckDB vs Spark at 1M and 10M synthetic interactions: ingest + transform, and batch scoring.

    make bench-engines    # or: .venv/bin/python bench/engines.py [--sizes 1000000 10000000]

For each size, `reclake data synth` writes a dataset (users = interactions / 50, 20k items, 1% broken
rows). Then, per engine, in a fresh child process each:
  transform  the real `ingest_transform` job (ingest, dbt build + tests, Great Expectations checks);
  scoring    the serving asset's scorer (`score_partition`) with a SASRec over the 20k items (random
             weights: the same arithmetic as a trained one) writing the contract partition.
Peak memory is the largest summed RSS of the child's whole process tree (dbt, the Spark JVMs and
Python workers included), sampled every 0.2 s. Printed: times, peak memory, the growth ratio
10M/1M per engine (10 = linear; goal <= 12) and the crossover size where Spark would get faster,
from a straight-line fit t = fixed + per_row * n of each engine's two points.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ENGINES = ("duckdb", "spark")
ITEMS = 20_000
DATE = "2030-01-01"  # after every synthetic timestamp: every user is scored


def peak_tree_rss(process, stop: threading.Event, out: list) -> None:
    import psutil

    root, peak = psutil.Process(process.pid), 0
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out.append(peak)


def run_child(args: list[str]) -> dict:
    """Run this script as a child (`--child ...`), watching its process tree's memory."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True
    )
    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=peak_tree_rss, args=(process, stop, peak))
    watcher.start()
    out, _ = process.communicate()
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"child {args} failed with exit code {process.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "peak_gb": peak[0] / 1e9}


def child_transform(home: str, data: str, engine: str) -> dict:
    import dagster as dg

    from orchestration.core.partitions import daily_partitions
    from orchestration.core.resources import LakeResource
    from orchestration.definitions import WAREHOUSE_JOB, build_defs

    job = build_defs(LakeResource(home=home, dataset=data, engine=engine)).resolve_job_def(
        WAREHOUSE_JOB
    )
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            partition_key=daily_partitions.get_last_partition_key(),  # a snapshot: any day reads it all
        )
        steps = {
            s.step_key: round(s.end_time - s.start_time, 1)
            for s in instance.get_run_step_stats(result.run_id)
        }
    if not result.success:
        raise SystemExit(f"ingest_transform failed on {engine}")
    return {"seconds": time.perf_counter() - started, "steps": steps}


def child_scoring(home: str, engine: str) -> dict:
    import numpy as np
    import torch

    from models.recsys.sasrec import SASRec, SASRecConfig
    from models.recsys.serving import SavedRecommender
    from models.registry import Champion
    from orchestration.core.resources import LakeResource
    from orchestration.defs.serving.resources import ServingResource
    from orchestration.defs.serving.scoring import score_partition

    torch.manual_seed(0)
    model = SASRec(SASRecConfig(device="cpu"))
    model.net = model.build_net(ITEMS).eval()
    items = np.array([f"i{i}" for i in range(ITEMS)], dtype=object)
    champion = Champion(
        "1", "bench", "sasrec", SavedRecommender(model, np.array([], dtype=object), items, [])
    )

    class Log:
        def info(self, message):
            print(message, file=sys.stderr)

    class Context:
        log = Log()

    lake = LakeResource(home=home, engine=engine)
    spark = None
    if engine == "spark":
        from pyspark.sql import SparkSession

        from orchestration.core.spark import spark_config

        builder = SparkSession.builder
        for key, value in spark_config().items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    started = time.perf_counter()
    facts = score_partition(Context(), lake, ServingResource(), champion, DATE, spark)
    return {
        "seconds": time.perf_counter() - started,
        "users": facts["users_scored"],
        "rows": facts["rows"],
    }


def fit_line(n1, t1, n2, t2):
    per_row = (t2 - t1) / (n2 - n1)
    return t1 - per_row * n1, per_row


def crossover(duck: tuple, spark: tuple) -> str:
    (a_d, b_d), (a_s, b_s) = duck, spark
    if b_s >= b_d:
        return "none: Spark's time per row is not lower than DuckDB's on this machine"
    n = (a_s - a_d) / (b_d - b_s)
    return (
        f"about {n / 1e6:,.1f}M interactions" if n > 0 else "Spark is faster at every size measured"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--workdir", default=None, help="keep the datasets and homes here (default: a temp dir)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from orchestration.core.settings import apply_process_switches, parse_dbt_project

    apply_process_switches()
    if args.child:
        kind, *rest = args.child
        result = child_transform(*rest) if kind == "transform" else child_scoring(*rest)
        print(json.dumps(result))
        return

    parse_dbt_project()
    from orchestration.defs.ingest.synth import SynthConfig, write_synthetic_dataset

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reclake-bench-engines-"))
    results = {}
    for n in args.sizes:
        data = workdir / f"synth_{n}"
        if not (data / "interactions.csv").exists():
            write_synthetic_dataset(
                SynthConfig(
                    users=n // 50, items=ITEMS, interactions=n, seed=0, malformed_share=0.01
                ),
                data,
                log=lambda _: None,
            )
        for engine in ENGINES:
            home = str(workdir / f"home_{engine}_{n}")
            print(f"{n:>11,} interactions, {engine}: ingest + transform ...", flush=True)
            transform = run_child(["transform", home, str(data), engine])
            print(
                f"{'':>11}  {transform['seconds']:.1f} s, peak {transform['peak_gb']:.2f} GB  {transform['steps']}",
                flush=True,
            )
            print(f"{n:>11,} interactions, {engine}: batch scoring ...", flush=True)
            scoring = run_child(["scoring", home, engine])
            print(
                f"{'':>11}  {scoring['seconds']:.1f} s, peak {scoring['peak_gb']:.2f} GB, {scoring['users']:,} users",
                flush=True,
            )
            results[(n, engine)] = {"transform": transform, "scoring": scoring}

    small, big = args.sizes
    print(
        f"\n{'stage':<12}{'engine':<8}{f'{small / 1e6:g}M s':>9}{f'{big / 1e6:g}M s':>9}{'ratio':>7}"
        f"{f'{small / 1e6:g}M GB':>9}{f'{big / 1e6:g}M GB':>9}"
    )
    for stage in ("transform", "scoring"):
        lines = {}
        for engine in ENGINES:
            a, b = results[(small, engine)][stage], results[(big, engine)][stage]
            lines[engine] = fit_line(small, a["seconds"], big, b["seconds"])
            print(
                f"{stage:<12}{engine:<8}{a['seconds']:>9.1f}{b['seconds']:>9.1f}{b['seconds'] / a['seconds']:>7.2f}"
                f"{a['peak_gb']:>9.2f}{b['peak_gb']:>9.2f}"
            )
        print(
            f"{'':<12}crossover (Spark faster from): {crossover(lines['duckdb'], lines['spark'])}"
        )
    print(
        f"growth ratio goal: <= 12 for {big / small:g}x the data (linear = {big / small:g}); "
        f"machine: {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
