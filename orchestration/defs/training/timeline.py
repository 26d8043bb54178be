"""`timeline_evaluation`: the recommenders fit again under the timeline protocol (`timeline_splits`,
models/evaluation/timeline.py), with the same code and settings as their assets, beside the
leave-one-out figures of their registered versions.

Writes lake/eval_timeline/model_name=…/model_version=…/topk.parquet (user_id, item_id, rank, seed;
the version is the registered leave-one-out one whose code and settings were refit),
lake/reports/timeline.json and .png, and an MLflow run `timeline`. The two-stage ranker is left
out: its Feast features are computed from leave-one-out train rows, which hold events after the
timeline's cutoff.
"""

import dagster as dg
import pandas as pd
import pyarrow as pa

from models import registry
from models.common.device import torch_threads
from models.evaluation.timeline import compare_protocols, fit_on_timeline
from models.recsys.data import SplitData
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import SPLIT_COLUMNS, connect, splits_version, table_fingerprint
from orchestration.defs.training import plots
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.resources import TimelineRunConfig, TrainingResource

TIMELINE_CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    code_version=TIMELINE_CODE_VERSION,
    deps=["timeline_splits", *(f"{name}_model" for name in BUILDERS)],
    kinds={"pytorch", "mlflow"},
    description="Every recommender refit on timeline_splits (one global cutoff), several seeds; "
    "its order against leave-one-out's and Kendall tau.",
)
def timeline_evaluation(
    context: dg.AssetExecutionContext,
    config: TimelineRunConfig,
    lake: LakeResource,
    training: TrainingResource,
) -> dg.MaterializeResult:
    training = training.model_copy(update=config.overrides())
    report_path = lake.paths.report("timeline.json")
    memo = Unchanged(
        context,
        config=training.model_dump(exclude={"torch_threads", "two_stage_base", "two_stage_n"}),
        outputs_present=report_path.exists(),
    )
    if memo.skip:
        return memo.result
    with connect(lake.warehouse_path) as con:
        frame = con.execute(f"select {SPLIT_COLUMNS} from main.timeline_splits").df()
        _, timeline_version = table_fingerprint(con, "timeline_splits")
    data = SplitData.from_splits(frame, timeline=True)
    client = registry.connect(lake.paths.mlflow_dir)
    data_version = splits_version(lake.warehouse_path)
    registered = {row["model_name"]: row for row in registry.latest_versions(client, data_version)}
    missing = [name for name in BUILDERS if name not in registered]
    if missing:
        raise dg.Failure(f"no registered version of {missing} on data version {data_version}")
    seeds = tuple(range(training.seed, training.seed + training.timeline_seeds))
    context.log.info(
        f"timeline: {len(data.eval_users('test'))} test users, {data.n_items} items, seeds {seeds}"
    )
    builders = {
        name: (
            lambda seed, build=build: build(training.model_copy(update={"seed": seed}), lake, data)[
                0
            ]
        )
        for name, build in BUILDERS.items()
    }
    with torch_threads(training.torch_threads):
        runs = fit_on_timeline(builders, data, seeds, log=context.log.info)
    for name in BUILDERS:
        topk = pd.concat([r.topk for r in runs if r.model_name == name], ignore_index=True)
        write_parquet_atomic(
            pa.Table.from_pandas(topk, preserve_index=False),
            lake.paths.eval_timeline(name, registered[name]["version"]) / "topk.parquet",
        )
    loo = {name: row["test_ndcg_at_10"] for name, row in registered.items() if name in BUILDERS}
    report = {
        "data_version": data_version,
        "timeline_splits_version": timeline_version,
        "versions": {name: str(registered[name]["version"]) for name in BUILDERS},
        **compare_protocols(loo, runs),
    }
    chart = plots.protocols(report, lake.paths.report("timeline.png"))
    write_json_atomic(report, report_path)
    metrics = {
        f"timeline_ndcg_at_10_{name}": row["timeline_ndcg_at_10"]
        for name, row in report["models"].items()
    }
    if report["kendall_tau"] is not None:
        metrics["kendall_tau"] = report["kendall_tau"]
    registry.log_report_run(
        client,
        "timeline",
        run_tags(context, data_version=data_version, timeline_splits_version=timeline_version),
        params={"seeds": ",".join(map(str, seeds))},
        metrics=metrics,
        dicts={"timeline.json": report},
        artifacts={"plots": [chart]},
    )
    table = pd.DataFrame([{"model_name": name, **row} for name, row in report["models"].items()])
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "models": dg.MetadataValue.md(table.to_markdown(index=False)),
                "timeline_order": ", ".join(report["timeline_order"]),
                "loo_order": ", ".join(report["loo_order"]),
                "kendall_tau": report["kendall_tau"],
                "chart": png_markdown(chart),
                "seeds": ",".join(map(str, seeds)),
            }
        )
    )
