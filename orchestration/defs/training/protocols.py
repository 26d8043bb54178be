"""What the protocol assets (timeline, cold-item and cold-user evaluations) share: the registered
versions whose code and settings they refit, the builders at each seed, and the top-k files."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from models import registry
from models.common.device import torch_threads
from models.evaluation.refit import RefitRun, refit
from models.recsys.data import SplitData
from orchestration.core.files import write_parquet_atomic
from orchestration.core.resources import LakeResource
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import SPLIT_COLUMNS, connect, splits_version, table_fingerprint
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.resources import TrainingResource

# evaluations that refit every model once more: with the first training, not the weekly retrain
PROTOCOL_ASSETS = (
    "timeline_evaluation",
    "cold_item_evaluation",
    "cold_user_evaluation",
    "evaluator_split_lists",
)
# the training settings a refit reads (BUILDERS); a change to any other does not re-run it
REFIT_FIELDS = {
    "device", "seed", "max_epochs", "patience", "llm_item_text", "llm_use_user_profile",
    "content_item_text",
}  # fmt: skip


def protocol_memo(
    context: dg.AssetExecutionContext, training: TrainingResource, seeds_field: str, report: Path
) -> Unchanged:
    """Skip the refit when the split, the settings it reads and its report are unchanged."""
    return Unchanged(
        context,
        config=training.model_dump(include=REFIT_FIELDS | {seeds_field}),
        outputs_present=report.exists(),
    )


def read_split(
    lake: LakeResource, table: str, columns: str = SPLIT_COLUMNS
) -> tuple[pd.DataFrame, str]:
    """A protocol's split table (the columns SplitData reads) and its content version."""
    with connect(lake.warehouse_path) as con:
        frame = con.execute(f"select {columns} from main.{table}").df()
        _, version = table_fingerprint(con, table)
    return frame, version


def registered_versions(lake: LakeResource) -> tuple[object, str, dict[str, dict]]:
    """(MLflow client, data version, each model's newest version on it); fails naming the missing."""
    client = registry.connect(lake.paths.mlflow_dir)
    data_version = splits_version(lake.warehouse_path)
    registered = {row["model_name"]: row for row in registry.latest_versions(client, data_version)}
    missing = [name for name in BUILDERS if name not in registered]
    if missing:
        raise dg.Failure(f"no registered version of {missing} on data version {data_version}")
    return client, data_version, registered


def protocol_builders(
    lake: LakeResource, training: TrainingResource, data: SplitData
) -> dict[str, Callable[[int], object]]:
    """Every model in BUILDERS, built as its asset builds it (its vectors aligned to `data`), by seed."""
    return {
        name: (
            lambda seed, build=build: build(training.model_copy(update={"seed": seed}), lake, data)[
                0
            ]
        )
        for name, build in BUILDERS.items()
    }


def refit_all(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    training: TrainingResource,
    data: SplitData,
    seeds: tuple[int, ...],
    label: str,
) -> list[RefitRun]:
    """Every model in BUILDERS refit on `data` once per seed."""
    with torch_threads(training.torch_threads):
        return refit(
            protocol_builders(lake, training, data), data, seeds, log=context.log.info, label=label
        )


def write_topk(
    runs: list[RefitRun], registered: dict[str, dict], folder: Callable[[str, object], Path]
) -> None:
    """Each model's lists over every seed (user_id, item_id, rank, seed) under `folder(name,
    version)`, the version being the registered one whose code and settings were refit."""
    for name in BUILDERS:
        topk = pd.concat([r.topk for r in runs if r.model_name == name], ignore_index=True)
        write_parquet_atomic(
            pa.Table.from_pandas(topk, preserve_index=False),
            folder(name, registered[name]["version"]) / "topk.parquet",
        )
