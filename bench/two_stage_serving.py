"""Benchmark: nightly scoring of every user by the two-stage model vs its base model alone.

    make demo                                    # registers two_stage_model (and its base) in MLflow
    .venv/bin/python bench/two_stage_serving.py [--home .reclake] [--version N] [--repeat 2]

Both run the serving code of batch_recommendations (`lists_in_process`: every user's history up to
today, scored chunk by chunk, top-K): the base version the two_stage version names in its tags,
then the two_stage version, which draws the base's top-N, looks up Feast `ranking_v1` as of the
batch moment for every candidate, computes the LLM features and applies the ranker. The output
file is not written (same for both). Goal (#20): two_stage <= 2x the base alone. Best of --repeat.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models import registry
from orchestration.core.paths import Lake
from orchestration.core.resources import LakeResource
from orchestration.core.settings import home_from_env
from orchestration.defs.serving.resources import ServingResource
from orchestration.defs.serving.scoring import lists_in_process


def load_version(client, version: str) -> registry.Champion:
    v = client.get_model_version(registry.REGISTERED_MODEL, version)
    return registry.Champion(
        version, v.run_id, v.tags["model_name"], registry.load_version(client, version)
    )


def score_everyone(
    lake: LakeResource, serving: ServingResource, champion, end: datetime
) -> tuple[float, int]:
    started = time.perf_counter()
    n_users, _, frames = lists_in_process(lake, serving, champion, end)
    rows = sum(len(frame) for frame in frames)
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--version", default=None, help="a two_stage version (default: the newest)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    home = Lake(args.home or home_from_env()).home
    client = registry.connect(Lake(home).mlflow_dir)
    versions = [
        v
        for v in client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'")
        if v.tags.get("model_name") == "two_stage" and v.tags.get(registry.COMPLETE_TAG) == "true"
    ]
    if not versions:
        raise SystemExit("no complete two_stage version: materialize two_stage_model first")
    chosen = (
        next((v for v in versions if str(v.version) == args.version), None)
        if args.version
        else max(versions, key=lambda v: int(v.version))
    )
    lake, serving = LakeResource(home=str(home)), ServingResource()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    models = {
        "base": load_version(client, chosen.tags["base_version"]),
        "two_stage": load_version(client, str(chosen.version)),
    }
    print(
        f"two_stage v{chosen.version} over {models['base'].model_name} v{models['base'].version}; "
        f"K={serving.top_k}, chunks of {serving.chunk_users} users, N={models['two_stage'].recommender.model.config.n}"
    )
    best = {}
    for attempt in range(args.repeat):
        for name, champion in models.items():
            seconds, rows = score_everyone(lake, serving, champion, end)
            best[name] = min(best.get(name, float("inf")), seconds)
            print(f"  run {attempt + 1}: {name:<9} {seconds:6.1f} s  {rows:,} rows", flush=True)
    print(
        f"  time ratio two_stage/base: {best['two_stage'] / best['base']:.2f} (goal <= 2.0; best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
