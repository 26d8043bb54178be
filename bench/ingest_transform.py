"""Benchmark: ingest + transform (+ blocking checks) on ML-100K and on a 10x synthetic copy.

    make bench            # or: .venv/bin/python bench/ingest_transform.py [--scale 10] [--ml100k DIR]

The baseline is ML-100K itself, measured in the same run; the 10x copy repeats every rating under
ten disjoint user-id namespaces with shifted timestamps (same items), so the work per row is the
same and the ratio shows how the pipeline grows with data (10.0 = linear; below it = fixed costs).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

from orchestration.core.settings import apply_process_switches, home_from_env, parse_dbt_project


def write_scaled_copy(source: Path, target: Path, scale: int) -> int:
    """ML-100K's ratings `scale` times as a generic interactions.csv; returns the row count."""
    with open(source / "ml-100k.inter") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))[1:]
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "interactions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "rating", "timestamp"])
        for copy in range(scale):
            shift = copy * 86_400 * 365  # a year apart, so every copy is a distinct history
            writer.writerows([f"{u}_{copy}", i, r, int(t) + shift] for u, i, r, t in rows)
    return len(rows) * scale


def time_pipeline(
    home: Path, dataset: str, data_dir: str | None
) -> tuple[float, dict[str, float], int]:
    import dagster as dg

    from orchestration.core.partitions import daily_partitions
    from orchestration.core.resources import LakeResource
    from orchestration.core.warehouse import query
    from orchestration.definitions import WAREHOUSE_JOB, build_defs

    lake = LakeResource(home=str(home), dataset=dataset, data_dir=data_dir)
    job = build_defs(lake).resolve_job_def(WAREHOUSE_JOB)
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            partition_key=daily_partitions.get_last_partition_key(),  # a snapshot: any day reads it all
        )
        stats = instance.get_run_step_stats(result.run_id)
    total = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"pipeline failed on {dataset}")
    steps = {s.step_key: s.end_time - s.start_time for s in stats}
    rows = int(
        query(lake.warehouse_path, "select count(*) as n from fct_interactions")["n"].iloc[0]
    )
    return total, steps, rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument(
        "--ml100k", help="folder with ml-100k.inter (default: fetch into the cache)"
    )
    args = parser.parse_args()
    apply_process_switches()
    parse_dbt_project()
    from orchestration.core.datasets import fetch_ml100k
    from orchestration.core.paths import Lake

    source = Path(args.ml100k) if args.ml100k else fetch_ml100k(Lake(home_from_env()).cache)
    with tempfile.TemporaryDirectory(prefix="reclake-bench-") as tmp:
        tmp = Path(tmp)
        n_scaled = write_scaled_copy(source, tmp / f"ml100k_x{args.scale}", args.scale)
        print(f"baseline: ML-100K ({source}) ...", flush=True)
        base_total, base_steps, base_rows = time_pipeline(tmp / "home_base", "ml-100k", str(source))
        print(f"scaled:   {n_scaled:,} interactions ({args.scale}x) ...", flush=True)
        big_total, big_steps, big_rows = time_pipeline(
            tmp / "home_big", str(tmp / f"ml100k_x{args.scale}"), None
        )

    print(f"\n{'step':<48}{'ML-100K s':>10}{f'x{args.scale} s':>10}{'ratio':>8}")
    for step in base_steps:
        b, s = base_steps[step], big_steps.get(step, float("nan"))
        print(f"{step:<48}{b:>10.2f}{s:>10.2f}{s / b if b > 0.05 else float('nan'):>8.2f}")
    print(
        f"{'TOTAL (ingest + transform + checks)':<48}{base_total:>10.2f}{big_total:>10.2f}"
        f"{big_total / base_total:>8.2f}"
    )
    print(
        f"rows in fct_interactions: {base_rows:,} vs {big_rows:,} ({big_rows / base_rows:.1f}x data)"
    )
    print(
        f"time ratio x{args.scale}/baseline: {big_total / base_total:.2f} (linear would be {big_rows / base_rows:.1f})"
    )


if __name__ == "__main__":
    main()
