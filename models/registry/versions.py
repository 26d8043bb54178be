"""Registered versions: one version of `reclake-recommender` per training run, and the tuned judges.

A version is created only after the run logged everything; `discard_version` removes one whose
follow-up work failed. A version counts (for comparison, the gate, serving) only once
`mark_complete` has tagged it, the last step of its asset: a process killed in between leaves an
incomplete version, which `reap_crashed` deletes on the next training, with the RUNNING runs of
dead processes (-> KILLED).
"""

import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models.common.failpoints import failpoint
from models.recsys.base import FitResult, save_recommender
from models.recsys.metrics import METRICS, Evaluation, ndcg_by_user
from models.recsys.serving import RecommenderPyfunc, SavedRecommender
from models.registry.tracking import (
    COMPLETE_TAG,
    EXPERIMENT,
    JUDGE_MODEL,
    REGISTERED_MODEL,
    log_batch,
    metric_name,
    open_run,
    process_tags,
    writer_dead,
)

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
VALID_BY_USER = (
    "evaluation/valid_ndcg_at_10_by_user.parquet"  # what the gate's paired comparison reads
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


def local_path(uri: str) -> Path | None:
    """An artifact URI as a path on this disk (None for a remote artifact store)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def local_artifact_dir(
    client: mlflow.MlflowClient, version: str, name: str = REGISTERED_MODEL
) -> Path | None:
    """Where a version's model files are on disk (None for a remote artifact store)."""
    return local_path(client.get_model_version_download_uri(name, version))


def load_version(client: mlflow.MlflowClient, version: str):
    """A registered recommender version's checkpoint as a SavedRecommender, read in place (no pyfunc
    environment): what a model over another (two_stage) and the benches load."""
    return SavedRecommender.load(
        local_artifact_dir(client, version) / "artifacts" / "recommender.pt"
    )


def artifacts_present(client: mlflow.MlflowClient, version: str) -> bool:
    """The version's model files exist (MLmodel and the recommender checkpoint)."""
    root = local_artifact_dir(client, version)
    if root is None:
        return True  # a remote artifact store: trust the registry
    return (root / "MLmodel").is_file() and (root / "artifacts" / "recommender.pt").is_file()


def latest_per_model(client: mlflow.MlflowClient, data_version: str) -> dict[str, object]:
    """model_name -> its newest registered version on this data version (with a valid score)."""
    valid_tag = metric_name("valid", "ndcg@10")
    latest: dict[str, object] = {}
    for v in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
        if (
            v.tags.get("data_version") != data_version
            or valid_tag not in v.tags
            or v.tags.get(COMPLETE_TAG) != "true"
        ):
            continue
        name = v.tags.get("model_name", "")
        if name not in latest or int(v.version) > int(latest[name].version):
            latest[name] = v
    return latest


def latest_versions(client: mlflow.MlflowClient, data_version: str) -> list[dict]:
    """Each model's newest complete version on this data version, with its run's metrics, by model name."""
    return [
        version_row(client, name, v)
        for name, v in sorted(latest_per_model(client, data_version).items())
    ]


def version_row(client: mlflow.MlflowClient, name: str, version) -> dict:
    """A model version with its run's valid/test metrics (one row of model_comparison)."""
    metrics = client.get_run(version.run_id).data.metrics
    return {
        "model_name": name,
        "version": str(version.version),
        "run_id": version.run_id,
        **{
            metric_name(s, m): metrics.get(metric_name(s, m), float("nan"))
            for s in ("valid", "test")
            for m in METRICS
        },
        "seconds_per_epoch": metrics.get("seconds_per_epoch", float("nan")),
    }


def valid_by_user(client: mlflow.MlflowClient, version) -> pd.Series | None:
    """A version's valid NDCG@10 per user (user_id index); None for a version logged without it."""
    root = local_path(client.get_run(version.run_id).info.artifact_uri)
    try:
        if root is not None:  # read in place (no download, no progress bar)
            path = root / VALID_BY_USER
            return (
                pd.read_parquet(path).set_index("user_id")["ndcg_at_10"] if path.is_file() else None
            )
        with tempfile.TemporaryDirectory() as folder:
            return pd.read_parquet(
                client.download_artifacts(version.run_id, VALID_BY_USER, folder)
            ).set_index("user_id")["ndcg_at_10"]
    except (MlflowException, OSError):
        return None


def register_judge(
    client: mlflow.MlflowClient, run_id: str, artifact_folder: str, tags: dict[str, str]
) -> str:
    """A version of the tuned judge registered from a finished run's artifact folder; its number."""
    if not client.search_registered_models(f"name='{JUDGE_MODEL}'"):
        client.create_registered_model(
            JUDGE_MODEL, description="reclake's tuned judge: a probe on an LLM's hidden states"
        )
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_folder}"
    return client.create_model_version(JUDGE_MODEL, source, run_id=run_id, tags=tags).version


def latest_judge_probe(client: mlflow.MlflowClient, data_version: str) -> tuple[str, Path] | None:
    """The newest reclake-judge version fitted on this data version, and its probe file (a local
    artifact store); None when there is none."""
    versions = [
        v
        for v in client.search_model_versions(f"name='{JUDGE_MODEL}'")
        if v.tags.get("data_version") == data_version
    ]
    if not versions:
        return None
    newest = str(max(versions, key=lambda v: int(v.version)).version)
    folder = local_artifact_dir(client, newest, JUDGE_MODEL)
    return (newest, folder / "probe.npz") if folder is not None else None
