"""MLflow: one run per trained model, one version of `reclake-recommender` per run, and the gate
that moves the `champion` alias.

Tracking and registry live in `$RECLAKE_HOME/mlflow/` (sqlite db + artifacts), so
    mlflow ui --backend-store-uri sqlite:///$RECLAKE_HOME/mlflow/mlflow.db
shows them. A version is created only after the run logged everything; `discard_version` removes
one whose follow-up work failed, and the gate never aliases a version whose artifacts are missing.
A version counts (for comparison, the gate, serving) only once `mark_complete` has tagged it, the
last step of its asset: a process killed in between leaves an incomplete version, which
`reap_crashed` deletes on the next training, with the RUNNING runs of dead processes (-> KILLED).
"""

import math
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models.evaluation import Evaluation
from models.failpoints import failpoint
from models.files import process_alive
from models.recsys.base import FitResult, save_recommender
from models.recsys.serving import RecommenderPyfunc

REGISTERED_MODEL = "reclake-recommender"
CHAMPION_ALIAS = "champion"
EXPERIMENT = "reclake"
MODEL_CODE = Path(__file__).resolve().parent  # the `models` package, shipped inside each MLflow model
# user ids in; ranked items out; `k` (how many per user) as a parameter
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "user_id")]),
    outputs=Schema([ColSpec("string", "user_id"), ColSpec("string", "item_id"), ColSpec("long", "rank"),
                    ColSpec("double", "score")]),
    params=ParamSchema([ParamSpec("k", "long", 10)]))
COMPLETE_TAG = "complete"
PID_TAG, HOST_TAG = "reclake.pid", "reclake.host"  # which process wrote a run or version
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy==2.4.6", "pandas==2.3.3", "mlflow==3.17.2", "scipy"]


def metric_name(stage: str, metric: str) -> str:
    """'test', 'ndcg@10' -> 'test_ndcg_at_10' (MLflow names cannot hold '@')."""
    return f"{stage}_{metric.replace('@', '_at_')}"


def connect(home: Path) -> mlflow.MlflowClient:
    """Point this process's MLflow at the data home; create the experiment on first use."""
    root = (Path(home) / "mlflow").resolve()
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"  # absolute path -> four slashes
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return client


@dataclass
class Candidate:
    model_name: str
    version: str
    run_id: str
    valid_ndcg10: float


def process_tags() -> dict[str, str]:
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _writer_dead(tags: dict) -> bool:
    """The process that wrote these tags ran on this host and is gone (killed or crashed)."""
    pid = tags.get(PID_TAG, "")
    if tags.get(HOST_TAG) != socket.gethostname() or not pid.isdigit():
        return False  # another machine's, or older than these tags: not ours to judge
    return not process_alive(int(pid))


def log_and_register(model, data, fit: FitResult, valid: Evaluation, test: Evaluation, *, workdir: Path,
                     run_tags: dict[str, str], version_tags: dict[str, str], plots: list[Path]) -> Candidate:
    """Log one finished training as an MLflow run and register its model. Anything raised before the
    last line leaves the run FAILED and no model version behind. The version is not complete
    (not compared, gated or served) until `mark_complete`."""
    run_tags = {**run_tags, **process_tags()}
    with mlflow.start_run(run_name=f"{model.name}-seed{model.config.seed}", tags=run_tags) as run:
        mlflow.log_params({**{k: str(v) for k, v in asdict(model.config).items()}, "model_name": model.name,
                           "device": model.device, "n_users": data.n_users, "n_items": data.n_items})
        for epoch in fit.epochs:
            if not math.isnan(epoch["train_loss"]):
                mlflow.log_metric("train_loss", epoch["train_loss"], step=epoch["epoch"])
            mlflow.log_metric("valid_ndcg_at_10_by_epoch", epoch["valid_ndcg@10"], step=epoch["epoch"])
        for step, trial in enumerate(fit.trials):
            mlflow.log_metric("grid_valid_ndcg_at_10", trial["valid_ndcg@10"], step=step)
        if fit.trials:
            mlflow.log_table(pd.DataFrame(fit.trials), "grid.json")
        mlflow.log_metrics({**{metric_name("valid", k): v for k, v in valid.metrics.items()},
                            **{metric_name("test", k): v for k, v in test.metrics.items()},
                            "training_seconds": fit.seconds, "seconds_per_epoch": fit.seconds_per_epoch,
                            "epochs": len(fit.epochs), "best_epoch": fit.best_epoch})
        for plot in plots:
            mlflow.log_artifact(str(plot), "plots")
        checkpoint = save_recommender(model, data, workdir / "recommender.pt")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=RecommenderPyfunc(), artifacts={"recommender": str(checkpoint)},
            signature=SIGNATURE, input_example=pd.DataFrame({"user_id": [str(data.users[0])]}),
            pip_requirements=PIP_REQUIREMENTS, code_paths=[str(MODEL_CODE)])
        tags = {**version_tags, **process_tags(), "model_name": model.name,
                # the gate's score: on the full split, like the logged metric (fit may have seen fewer users)
                metric_name("valid", "ndcg@10"): repr(valid.metrics["ndcg@10"])}
        version = mlflow.register_model(info.model_uri, REGISTERED_MODEL, tags=tags)
        failpoint("registry.version_registered")  # crash tests: a version exists, its run is still RUNNING
    return Candidate(model.name, str(version.version), run.info.run_id, valid.metrics["ndcg@10"])


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
        if v.tags.get(COMPLETE_TAG) != "true" and _writer_dead(v.tags):
            discard_version(client, str(v.version))
            deleted.append(str(v.version))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            if _writer_dead(run.data.tags):
                client.set_terminated(run.info.run_id, status="KILLED")
                killed.append(run.info.run_id)
    return {"deleted_versions": deleted, "killed_runs": killed}


def local_artifact_dir(client: mlflow.MlflowClient, version: str) -> Path | None:
    """Where a version's model files are on disk (None for a remote artifact store)."""
    parsed = urlparse(client.get_model_version_download_uri(REGISTERED_MODEL, version))
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


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
        if v.tags.get("data_version") != data_version or valid_tag not in v.tags or v.tags.get(COMPLETE_TAG) != "true":
            continue
        name = v.tags.get("model_name", "")
        if name not in latest or int(v.version) > int(latest[name].version):
            latest[name] = v
    return latest


def _champion(client: mlflow.MlflowClient):
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    except MlflowException:
        return None


def gate(client: mlflow.MlflowClient, data_version: str) -> dict:
    """Give `champion` to the best candidate on this data version by VALID NDCG@10, only if it beats
    the current champion on the same data version. Test metrics never take part."""
    valid_tag = metric_name("valid", "ndcg@10")
    latest = latest_per_model(client, data_version)
    candidates = [v for v in latest.values() if artifacts_present(client, str(v.version))]
    decision = {"data_version": data_version, "candidates": {v.tags["model_name"]: {
        "version": str(v.version), "valid_ndcg@10": float(v.tags[valid_tag])} for v in candidates}}
    current = _champion(client)
    decision["champion_before"] = str(current.version) if current else None
    decision["champion_before_valid_ndcg@10"] = float(current.tags[valid_tag]) if current and valid_tag in current.tags else None
    if not candidates:
        return {**decision, "decision": "keep", "reason": "no candidate with artifacts on this data version",
                "champion": decision["champion_before"]}
    best = max(candidates, key=lambda v: (float(v.tags[valid_tag]), -int(v.version)))
    best_valid = float(best.tags[valid_tag])
    best_version = str(best.version)
    decision.update(candidate=best_version, candidate_model=best.tags["model_name"], candidate_valid_ndcg10=best_valid)
    if current is None:
        promote, reason = True, "no champion yet"
    elif not artifacts_present(client, str(current.version)):
        promote, reason = True, f"champion v{current.version}'s artifacts are missing"
    elif current.tags.get("data_version") != data_version:
        promote, reason = True, f"champion v{current.version} was chosen on another data version; its valid score does not compare"
    elif str(current.version) == best_version:
        promote, reason = False, "the best candidate already is the champion"
    elif best_valid > decision["champion_before_valid_ndcg@10"]:
        promote, reason = True, f"valid NDCG@10 {best_valid:.4f} > champion's {decision['champion_before_valid_ndcg@10']:.4f}"
    else:
        promote, reason = False, f"valid NDCG@10 {best_valid:.4f} <= champion's {decision['champion_before_valid_ndcg@10']:.4f}"
    if promote:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, best_version)
    champion = best_version if promote else decision["champion_before"]
    decision.update(decision="promote" if promote else "keep", reason=reason, champion=champion)
    client.set_model_version_tag(REGISTERED_MODEL, best_version, "gate_decision", f"{decision['decision']}: {reason}")
    client.set_registered_model_tag(REGISTERED_MODEL, "last_gate", f"{decision['decision']} v{best_version}: {reason}")
    return decision


class NoChampionError(RuntimeError):
    pass


@dataclass
class Champion:
    version: str
    run_id: str
    model_name: str
    recommender: object  # models.recsys.serving.SavedRecommender


def load_champion(client: mlflow.MlflowClient) -> Champion:
    """The model behind `reclake-recommender@champion`, loaded through MLflow's pyfunc flavour
    (on CUDA when present, else CPU)."""
    version = _champion(client)
    if version is None:
        raise NoChampionError(f"no '{CHAMPION_ALIAS}' alias on registered model '{REGISTERED_MODEL}' yet: "
                              "materialize the `training` group (its `champion_model` asset sets it) first")
    if not artifacts_present(client, str(version.version)):
        raise NoChampionError(f"champion v{version.version}'s artifacts are missing: re-run the `training` group")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}")
    recommender = pyfunc.unwrap_python_model().recommender
    return Champion(str(version.version), version.run_id, version.tags.get("model_name", "?"), recommender)
