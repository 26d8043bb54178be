"""Registering a trained recommender: its MLflow run and version, its eval_topk, and the check that
all of them are still in place (what lets an unchanged asset skip)."""

import tempfile
from pathlib import Path

import dagster as dg
import pyarrow as pa
from mlflow.exceptions import MlflowException

from models import registry
from models.recsys.base import FitResult
from models.recsys.data import SplitData
from models.recsys.metrics import Evaluation
from orchestration.core.files import write_parquet_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown

TOPK_SCHEMA = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("rank", pa.int32())])


def write_eval_topk(
    lake: LakeResource, model_name: str, version: str, data: SplitData, test
) -> Path:
    """The test-time top-20 per user (contract: lake/eval_topk/model_name=…/model_version=…/)."""
    table = pa.Table.from_pandas(test.as_frame(data), schema=TOPK_SCHEMA, preserve_index=False)
    path = lake.paths.eval_topk(model_name, version) / "topk.parquet"
    write_parquet_atomic(table, path)
    return path


def reap_crashed(context, lake: LakeResource) -> None:
    reaped = registry.reap_crashed(registry.connect(lake.paths.mlflow_dir))
    if any(reaped.values()):
        context.log.warning(
            f"cleaned up after a killed training process: deleted incomplete versions "
            f"{reaped['deleted_versions']}, marked runs KILLED {reaped['killed_runs']}"
        )


def register(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    model,
    data: SplitData,
    data_version: str,
    fit: FitResult,
    valid: Evaluation,
    test: Evaluation,
    plot,
    metadata: dict | None = None,
    **input_versions: str,
) -> dg.MaterializeResult:
    """Log a fitted and evaluated model as an MLflow run, register it as a version of
    reclake-recommender (tagged with `input_versions`), write its eval_topk, and only then mark the
    version complete. `plot(folder)` draws the run's chart (a learning curve, feature gains) and
    returns its path; `metadata` adds to the asset's."""
    client = registry.connect(lake.paths.mlflow_dir)
    context.log.info(
        f"{model.name}: test " + ", ".join(f"{k} {v:.4f}" for k, v in test.metrics.items())
    )
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        curve = plot(Path(workdir))
        candidate = registry.log_and_register(
            client,
            model,
            data,
            fit,
            valid,
            test,
            workdir=Path(workdir),
            plots=[curve],
            run_tags=run_tags(
                context, dataset=lake.dataset, data_version=data_version, **input_versions
            ),
            version_tags={
                "dataset": lake.dataset,
                "data_version": data_version,
                "seed": str(model.config.seed),
                **input_versions,
            },
        )
        try:  # the version is only kept, and counts, once its evaluation output is in place
            topk_path = write_eval_topk(lake, model.name, candidate.version, data, test)
            curve_md = png_markdown(curve)
            registry.mark_complete(client, candidate.version)
        except BaseException:
            registry.discard_version(client, candidate.version)
            raise
    return dg.MaterializeResult(
        metadata={
            **{f"test_{k}": v for k, v in test.metrics.items()},
            "valid_ndcg@10": valid.metrics["ndcg@10"],
            "epochs": len(fit.epochs),
            "best_epoch": fit.best_epoch,
            "training_seconds": round(fit.seconds, 1),
            "seconds_per_epoch": round(fit.seconds_per_epoch, 2),
            "grid": dg.MetadataValue.json(fit.trials) if fit.trials else dg.MetadataValue.text("-"),
            **({"cold_rows": dg.MetadataValue.json(fit.cold_rows)} if fit.cold_rows else {}),
            "device": model.device,
            "seed": model.config.seed,
            "model_version": candidate.version,
            "mlflow_run_id": candidate.run_id,
            "data_version": data_version,
            "eval_topk": dg.MetadataValue.path(str(topk_path)),
            "chart": curve_md,
            **(metadata or {}),
        },
        data_version=dg.DataVersion(f"{model.name}-v{candidate.version}"),
    )


def version_in_place(lake: LakeResource, model_name: str, version) -> bool:
    """The registered version, its artifacts and its eval_topk are all still there."""
    if version is None:
        return False
    client = registry.connect(lake.paths.mlflow_dir)
    try:
        complete = (
            client.get_model_version(registry.REGISTERED_MODEL, str(version)).tags.get(
                registry.COMPLETE_TAG
            )
            == "true"
        )
    except MlflowException:
        return False
    return (
        complete
        and registry.artifacts_present(client, str(version))
        and lake.paths.eval_topk(model_name, version).exists()
    )
