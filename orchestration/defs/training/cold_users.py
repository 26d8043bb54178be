"""`cold_user_evaluation`: the recommenders refit without 15% of the users (`cold_user_splits`), then
asked for those users after their first 1, 3 and 5 events, with the same code and settings as their
assets (models/evaluation/cold_users.py).

Writes lake/eval_cold_users/model_name=…/model_version=…/topk.parquet (user_id, item_id, rank, seed,
context_size; the version is the registered leave-one-out one whose code and settings were refit),
lake/reports/cold_users.json and .png, and an MLflow run `cold_users`. The two-stage ranker is left
out, as under the other protocols: its Feast features come from leave-one-out train rows, which hold
the cold users.
"""

import dagster as dg
import pandas as pd

from models import registry
from models.common.device import torch_threads
from models.evaluation.cold_users import cold_user_data, cold_user_report, refit_cold_users
from orchestration.core.files import write_json_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown
from orchestration.core.warehouse import SPLIT_COLUMNS, catalog_items
from orchestration.defs.training import plots
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.protocols import (
    protocol_builders,
    protocol_memo,
    read_split,
    registered_versions,
    write_topk,
)
from orchestration.defs.training.resources import ColdUsersRunConfig, TrainingResource

COLD_USERS_CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    code_version=COLD_USERS_CODE_VERSION,
    deps=["cold_user_splits", "dim_items", *(f"{name}_model" for name in BUILDERS)],
    kinds={"pytorch", "mlflow"},
    description="Every recommender refit with 15% of the users held out of training; HR@10 on "
    "each held-out user's next film after their first 1, 3 and 5, against popularity.",
)
def cold_user_evaluation(
    context: dg.AssetExecutionContext,
    config: ColdUsersRunConfig,
    lake: LakeResource,
    training: TrainingResource,
) -> dg.MaterializeResult:
    training = training.model_copy(update=config.overrides())
    report_path = lake.paths.report("cold_users.json")
    memo = protocol_memo(context, training, "cold_user_seeds", report_path)
    if memo.skip:
        return memo.result
    frame, splits_version = read_split(lake, "cold_user_splits", f"{SPLIT_COLUMNS}, context_size")
    datas = cold_user_data(frame, catalog_items(lake.warehouse_path))
    client, data_version, registered = registered_versions(lake)
    seeds = tuple(range(training.seed, training.seed + training.cold_user_seeds))
    context.log.info(
        f"cold users: {len(datas[1].eval_users('test'))} held out, tested after "
        f"{', '.join(map(str, datas))} events; seeds {seeds}"
    )
    builders = protocol_builders(lake, training, datas[1])
    with torch_threads(training.torch_threads):
        runs = refit_cold_users(builders, datas, seeds, log=context.log.info)
    write_topk(
        [r for sized in runs.values() for r in sized], registered, lake.paths.eval_cold_users
    )
    report = {
        "data_version": data_version,
        "cold_user_splits_version": splits_version,
        "versions": {name: str(registered[name]["version"]) for name in BUILDERS},
        "context_sizes": cold_user_report(runs),
    }
    chart = plots.cold_users(report, lake.paths.report("cold_users.png"))
    write_json_atomic(report, report_path)
    registry.log_report_run(
        client,
        "cold_users",
        run_tags(context, data_version=data_version, cold_user_splits_version=splits_version),
        params={"seeds": ",".join(map(str, seeds))},
        metrics={
            f"cold_user_hit_at_10_{name}_after_{size}": row["hit_at_10"]
            for size, sized in report["context_sizes"].items()
            for name, row in sized["models"].items()
        },
        dicts={"cold_users.json": report},
        artifacts={"plots": [chart]},
    )
    table = pd.DataFrame(
        [
            {"model_name": name, "after": int(size), **row}
            for size, sized in report["context_sizes"].items()
            for name, row in sized["models"].items()
        ]
    )
    shown = ["model_name", "after", "hit_at_10", "hit_ci", "ratio_to_popularity"]
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "models": dg.MetadataValue.md(table[shown].to_markdown(index=False)),
                "best": ", ".join(f"{s}: {r['best']}" for s, r in report["context_sizes"].items()),
                "chart": png_markdown(chart),
                "seeds": ",".join(map(str, seeds)),
            }
        )
    )
