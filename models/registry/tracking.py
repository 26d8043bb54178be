"""MLflow tracking: the client on a data home's folder, finished runs with params, metrics and files.

Tracking and registry live in one folder (reclake's is `$RECLAKE_HOME/mlflow/`: sqlite db + artifacts), so
    mlflow ui --backend-store-uri sqlite:///$RECLAKE_HOME/mlflow/mlflow.db
shows them. Everything goes through an explicit `MlflowClient` on that folder (`connect`): nothing
sets MLflow's process-wide tracking URI or active run, so two data homes can be used in one process.
"""

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.tracking.context.registry import resolve_tags

from models.common.files import process_alive

REGISTERED_MODEL = "reclake-recommender"
CHAMPION_ALIAS = "champion"
JUDGE_MODEL = "reclake-judge"  # tuned judges (models/evaluation/judge_probe.py): never candidates for champion
EXPERIMENT = "reclake"
COMPLETE_TAG = "complete"
PID_TAG, HOST_TAG = "reclake.pid", "reclake.host"  # which process wrote a run or version


def metric_name(stage: str, metric: str) -> str:
    """'test', 'ndcg@10' -> 'test_ndcg_at_10' (MLflow names cannot hold '@')."""
    return f"{stage}_{metric.replace('@', '_at_')}"


def tracking_uri(mlflow_dir: Path) -> str:
    return f"sqlite:///{Path(mlflow_dir).resolve() / 'mlflow.db'}"  # absolute path -> four slashes


def connect(mlflow_dir: Path) -> mlflow.MlflowClient:
    """A client on the tracking db and registry in `mlflow_dir`; the experiment is created on first use."""
    root = Path(mlflow_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri(root)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    return client


@contextmanager
def open_run(client: mlflow.MlflowClient, run_name: str, tags: dict[str, str]) -> Iterator[str]:
    """A run of the reclake experiment, FINISHED when the block ends, FAILED if it raises (what
    `mlflow.start_run` does, on this client); its id."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    run = client.create_run(experiment.experiment_id, run_name=run_name, tags=resolve_tags(tags))
    try:
        yield run.info.run_id
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")


def log_batch(
    client: mlflow.MlflowClient,
    run_id: str,
    *,
    params: dict | None = None,
    metrics: dict | None = None,
    steps: list[tuple[str, float, int]] = (),
) -> None:
    """Params and metrics in one batch (MLflow takes up to 100 params and 1000 metrics a batch)."""
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        + [Metric(k, float(v), now, step) for k, v, step in steps],
    )


def log_report_run(
    client: mlflow.MlflowClient,
    run_name: str,
    tags: dict[str, str],
    *,
    params: dict | None = None,
    metrics: dict | None = None,
    dicts: dict[str, dict] | None = None,
    tables: dict[str, pd.DataFrame] | None = None,
    artifacts: dict[str, list[Path]] | None = None,
) -> str:
    """One finished run of a report (model comparison, judge): params, metrics, JSON files, tables
    and files by artifact folder. Returns its run id."""
    with open_run(client, run_name, tags) as run_id:
        log_batch(client, run_id, params=params, metrics=metrics)
        for name, payload in (dicts or {}).items():
            client.log_dict(run_id, payload, name)
        for name, table in (tables or {}).items():
            client.log_table(run_id, table, name)
        for folder, paths in (artifacts or {}).items():
            for path in paths:
                client.log_artifact(run_id, str(path), folder)
    return run_id


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def writer_dead(tags: dict) -> bool:
    """The process that wrote these tags ran on this host and is gone (killed or crashed)."""
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit():
        return False  # another machine's, or older than these tags: not ours to judge
    return not process_alive(int(pid))
