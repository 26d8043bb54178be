"""Registering recommender versions: one version of `reclake-recommender` per training run.

A version is created only after the run logged everything; `discard_version` removes one whose
follow-up work failed. A version counts (for comparison, the gate, serving) only once
`mark_complete` has tagged it, the last step of its asset: a process killed in between leaves an
incomplete version, which `reap_crashed` deletes on the next training, with the RUNNING runs of
dead processes (-> KILLED). Finding versions again is versions.py.
"""

import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models.common.failpoints import failpoint
from models.recsys.base import FitResult, save_recommender
from models.recsys.metrics import Evaluation, ndcg_by_user
from models.recsys.serving import RecommenderPyfunc
from models.registry.tracking import (
    COMPLETE_TAG,
    EXPERIMENT,
    REGISTERED_MODEL,
    log_batch,
    metric_name,
    open_run,
    process_tags,
    writer_dead,
)
from models.registry.versions import VALID_BY_USER

MODEL_CODE = (
    Path(__file__).resolve().parents[1]
)  # the `models` package, shipped inside each MLflow model
# user ids in; ranked items out; `k` (how many per user) as a parameter
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "user_id")]),
    outputs=Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("string", "item_id"),
            ColSpec("long", "rank"),
            ColSpec("double", "score"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", "long", 10)]),
)
PIP_REQUIREMENTS = [
    "torch==2.13.0",
    "numpy==2.4.6",
    "pandas==2.3.3",
    "mlflow==3.17.2",
    "scipy",
    "lightgbm==4.7.0",
]


@dataclass
class Candidate:
    model_name: str
    version: str
    run_id: str
    valid_ndcg10: float


def log_and_register(
    client: mlflow.MlflowClient,
    model,
    data,
    fit: FitResult,
    valid: Evaluation,
    test: Evaluation,
    *,
    workdir: Path,
    run_tags: dict[str, str],
    version_tags: dict[str, str],
    plots: list[Path],
) -> Candidate:
    """Log one finished training as an MLflow run and register its model. Anything raised before the
    last line leaves the run FAILED and no model version behind. The version is not complete
    (not compared, gated or served) until `mark_complete`."""
    run_tags = {**run_tags, **process_tags()}
    with open_run(client, f"{model.name}-seed{model.config.seed}", run_tags) as run_id:
        log_batch(
            client,
            run_id,
            params={
                **{k: str(v) for k, v in asdict(model.config).items()},
                "model_name": model.name,
                "device": model.device,
                "n_users": data.n_users,
                "n_items": data.n_items,
            },
            metrics={
                **{metric_name("valid", k): v for k, v in valid.metrics.items()},
                **{metric_name("test", k): v for k, v in test.metrics.items()},
                "training_seconds": fit.seconds,
                "seconds_per_epoch": fit.seconds_per_epoch,
                "epochs": len(fit.epochs),
                "best_epoch": fit.best_epoch,
            },
            steps=[
                ("train_loss", e["train_loss"], e["epoch"])
                for e in fit.epochs
                if not math.isnan(e["train_loss"])
            ]
            + [("valid_ndcg_at_10_by_epoch", e["valid_ndcg@10"], e["epoch"]) for e in fit.epochs]
            + [
                ("grid_valid_ndcg_at_10", t["valid_ndcg@10"], step)
                for step, t in enumerate(fit.trials)
            ],
        )
        if fit.trials:
            client.log_table(run_id, pd.DataFrame(fit.trials), "grid.json")
        if fit.cold_rows:
            client.log_table(run_id, pd.DataFrame(fit.cold_rows), "cold_rows.json")
        for plot in plots:
            client.log_artifact(run_id, str(plot), "plots")
        workdir.mkdir(parents=True, exist_ok=True)
        by_user = workdir / Path(VALID_BY_USER).name
        pd.DataFrame(
            {
                "user_id": [str(u) for u in data.users[valid.users]],
                "ndcg_at_10": ndcg_by_user(valid.topk, data.target("valid")[valid.users]),
            }
        ).to_parquet(by_user)
        client.log_artifact(run_id, str(by_user), str(Path(VALID_BY_USER).parent))
        checkpoint = save_recommender(model, data, workdir / "recommender.pt")
        model_dir = (
            Path(tempfile.mkdtemp(prefix="pyfunc-", dir=workdir)) / "model"
        )  # save_model wants a new folder
        mlflow.pyfunc.save_model(
            path=str(model_dir),
            python_model=RecommenderPyfunc(),
            artifacts={"recommender": str(checkpoint)},
            signature=SIGNATURE,
            input_example=pd.DataFrame({"user_id": [str(data.users[0])]}),
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=[str(MODEL_CODE)],
        )
        client.log_artifacts(run_id, str(model_dir), "model")
        tags = {
            **version_tags,
            **process_tags(),
            "model_name": model.name,
            # the gate's score: on the full split, like the logged metric (fit may have seen fewer users)
            metric_name("valid", "ndcg@10"): repr(valid.metrics["ndcg@10"]),
        }
        if not client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
            client.create_registered_model(REGISTERED_MODEL)
        version = client.create_model_version(
            REGISTERED_MODEL,
            f"{client.get_run(run_id).info.artifact_uri}/model",
            run_id=run_id,
            tags=tags,
        )
        failpoint(
            "registry.version_registered"
        )  # crash tests: a version exists, its run is still RUNNING
    return Candidate(model.name, str(version.version), run_id, valid.metrics["ndcg@10"])


def discard_version(client: mlflow.MlflowClient, version: str) -> None:
    """Remove a version whose follow-up work failed, so no half-finished model stays registered."""
    client.delete_model_version(REGISTERED_MODEL, version)


def mark_complete(client: mlflow.MlflowClient, version: str) -> None:
    """The version and everything its asset writes for it are in place: from now on it counts."""
    client.set_model_version_tag(REGISTERED_MODEL, version, COMPLETE_TAG, "true")


def reap_crashed(client: mlflow.MlflowClient) -> dict[str, list[str]]:
    """Clean up after processes killed mid-training: delete their incomplete versions, mark their
    runs KILLED. Versions and runs of live processes or other hosts are left alone."""
    deleted, killed = [], []
    for v in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
        if v.tags.get(COMPLETE_TAG) != "true" and writer_dead(v.tags):
            discard_version(client, str(v.version))
            deleted.append(str(v.version))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            if writer_dead(run.data.tags):
                client.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
    return {"deleted_versions": deleted, "killed_runs": killed}
