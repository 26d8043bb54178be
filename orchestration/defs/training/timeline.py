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

from models import registry
from models.evaluation.timeline import compare_protocols
from models.recsys.data import SplitData
from orchestration.core.files import write_json_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown
from orchestration.defs.training import plots
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.protocols import (
    protocol_memo,
    read_split,
    refit_all,
    registered_versions,
    write_topk,
)
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
    memo = protocol_memo(context, training, "timeline_seeds", report_path)
    if memo.skip:
        return memo.result
    frame, timeline_version = read_split(lake, "timeline_splits")
    data = SplitData.from_splits(frame, timeline=True)
    client, data_version, registered = registered_versions(lake)
    seeds = tuple(range(training.seed, training.seed + training.timeline_seeds))
    context.log.info(
        f"timeline: {len(data.eval_users('test'))} test users, {data.n_items} items, seeds {seeds}"
    )
    runs = refit_all(context, lake, training, data, seeds, "timeline")
    write_topk(runs, registered, lake.paths.eval_timeline)
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
