"""`cold_item_evaluation`: the recommenders refit on `cold_item_splits` (15% of the films never in
training; each test user's first such film, ranked among all films), with the same code and
settings as their assets (models/evaluation/cold_items.py).

Writes lake/eval_cold_items/model_name=…/model_version=…/topk.parquet (user_id, item_id, rank, seed;
the version is the registered leave-one-out one whose code and settings were refit),
lake/reports/cold_items.json and .png, and an MLflow run `cold_items`. The two-stage ranker is left
out, as under the timeline: its Feast features come from leave-one-out train rows, which hold the
cold films.
"""

import dagster as dg
import pandas as pd

from models import registry
from models.evaluation.cold_items import cold_item_report
from models.recsys.data import SplitData
from orchestration.core.files import write_json_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown
from orchestration.core.warehouse import catalog_items
from orchestration.defs.training import plots
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.protocols import (
    protocol_memo,
    read_split,
    refit_all,
    registered_versions,
    write_topk,
)
from orchestration.defs.training.resources import ColdItemsRunConfig, TrainingResource

COLD_ITEMS_CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    code_version=COLD_ITEMS_CODE_VERSION,
    deps=["cold_item_splits", "dim_items", *(f"{name}_model" for name in BUILDERS)],
    kinds={"pytorch", "mlflow"},
    description="Every recommender refit with 15% of the films held out of training; HR@10 on "
    "each user's first such film among all films, against SASRec and the content retriever.",
)
def cold_item_evaluation(
    context: dg.AssetExecutionContext,
    config: ColdItemsRunConfig,
    lake: LakeResource,
    training: TrainingResource,
) -> dg.MaterializeResult:
    training = training.model_copy(update=config.overrides())
    report_path = lake.paths.report("cold_items.json")
    memo = protocol_memo(context, training, "cold_seeds", report_path)
    if memo.skip:
        return memo.result
    frame, splits_version = read_split(lake, "cold_item_splits")
    data = SplitData.from_splits(frame, cold_items=True, catalog=catalog_items(lake.warehouse_path))
    client, data_version, registered = registered_versions(lake)
    seeds = tuple(range(training.seed, training.seed + training.cold_seeds))
    never_trained = int((data.train_counts() == 0).sum())
    context.log.info(
        f"cold items: {len(data.eval_users('test'))} test users, {data.n_items} films of which "
        f"{never_trained} never in train, seeds {seeds}"
    )
    runs = refit_all(context, lake, training, data, seeds, "cold items")
    write_topk(runs, registered, lake.paths.eval_cold_items)
    report = {
        "data_version": data_version,
        "cold_item_splits_version": splits_version,
        "versions": {name: str(registered[name]["version"]) for name in BUILDERS},
        "films_never_trained": never_trained,
        **cold_item_report(runs),
    }
    chart = plots.cold_items(report, lake.paths.report("cold_items.png"))
    write_json_atomic(report, report_path)
    registry.log_report_run(
        client,
        "cold_items",
        run_tags(context, data_version=data_version, cold_item_splits_version=splits_version),
        params={"seeds": ",".join(map(str, seeds))},
        metrics={f"cold_hit_at_10_{n}": row["hit_at_10"] for n, row in report["models"].items()},
        dicts={"cold_items.json": report},
        artifacts={"plots": [chart]},
    )
    table = pd.DataFrame([{"model_name": name, **row} for name, row in report["models"].items()])
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "models": dg.MetadataValue.md(table.to_markdown(index=False)),
                "order": ", ".join(report["order"]),
                "best": report["best"],
                "chart": png_markdown(chart),
                "seeds": ",".join(map(str, seeds)),
            }
        )
    )
