"""`evaluator_split_lists`: the lists the judge and the simulated users are checked on.

Each user's last 10 train events are held out (models/evaluation/evaluator_split.py); every
recommender is fit again on the rest, with the same code and settings as its asset, and lists its
top 10 from the history before the held-out events. Both ladders (the best list's tail replaced by
popular or by random films) are built on the best refit. The registered versions cannot serve here:
they trained on the held-out events, and a model that memorized a user's next films would make the
truth about its lists, not about the evaluator.

Writes lake/evaluator_split/systems.parquet (system, user_id, rank, item_id) and models.json (data
version, each refit's valid NDCG@10, the registered version refit and its leave-one-out test
NDCG@10, the best model).
"""

import time

import dagster as dg
import pyarrow as pa

from models.common.device import torch_threads
from models.evaluation.evaluator_split import evaluator_split, refit_systems
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.resources import LakeResource
from orchestration.core.warehouse import load_splits
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.protocols import (
    protocol_builders,
    protocol_memo,
    registered_versions,
)
from orchestration.defs.training.resources import TrainingResource, TrainingRunConfig

EVALUATOR_LISTS_CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    code_version=EVALUATOR_LISTS_CODE_VERSION,
    deps=["splits", *(f"{name}_model" for name in BUILDERS)],
    kinds={"pytorch", "parquet"},
    description="Every recommender refit with each user's last 10 train events held out, its top 10 "
    "from the history before them, and two ladders of known order on the best: the lists the "
    "judge and the simulated users are checked on.",
)
def evaluator_split_lists(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    lake: LakeResource,
    training: TrainingResource,
) -> dg.MaterializeResult:
    training = training.model_copy(update=config.overrides())
    out = lake.paths.evaluator_split("systems.parquet")
    memo = protocol_memo(context, training, "seed", out)
    if memo.skip:
        return memo.result
    data, _ = load_splits(lake.warehouse_path)
    _, data_version, registered = registered_versions(lake)
    split = evaluator_split(data)
    context.log.info(
        f"evaluator split: {len(split.users)} users with 10 held-out events each; refitting "
        f"{', '.join(BUILDERS)}"
    )
    started = time.perf_counter()
    with torch_threads(training.torch_threads):
        systems, valid, best = refit_systems(
            protocol_builders(lake, training, split.fit), split, training.seed, log=context.log.info
        )
    rows = {"system": [], "user_id": [], "rank": [], "item_id": []}
    for name, lists in systems.items():
        for u, items in zip(split.users, lists):
            rows["system"] += [name] * len(items)
            rows["user_id"] += [str(data.users[u])] * len(items)
            rows["rank"] += list(range(1, len(items) + 1))
            rows["item_id"] += [str(data.items[i]) for i in items]
    write_parquet_atomic(pa.table(rows), out)
    models = {
        name: {
            "refit_valid_ndcg_at_10": valid[name],
            "registered_version": str(registered[name]["version"]),
            "test_ndcg_at_10": registered[name]["test_ndcg_at_10"],
        }
        for name in BUILDERS
    }
    report = {
        "data_version": data_version,
        "users": len(split.users),
        "best_model": best,
        "models": models,
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json_atomic(report, lake.paths.evaluator_split("models.json"))
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "users": len(split.users),
                "best_model": best,
                "systems": len(systems),
                "models": dg.MetadataValue.json(models),
                "path": dg.MetadataValue.path(str(out)),
            }
        )
    )
