"""Finding registered recommender versions: each model's latest complete version on a data
version, its run's metrics, its files on disk and checkpoint, its valid NDCG@10 per user (what the
gate's paired comparison reads). Registering them is registration.py.
"""

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from models.recsys.metrics import METRICS
from models.recsys.serving import SavedRecommender
from models.registry.tracking import COMPLETE_TAG, REGISTERED_MODEL, metric_name

# what the gate's paired comparison reads
VALID_BY_USER = "evaluation/valid_ndcg_at_10_by_user.parquet"


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


def latest_per_model(client: mlflow.MlflowClient, data_version: str | None) -> dict[str, object]:
    """model_name -> its newest registered version on this data version (None: on any), complete
    and with a valid score."""
    valid_tag = metric_name("valid", "ndcg@10")
    latest: dict[str, object] = {}
    for v in client.search_model_versions(f"name='{REGISTERED_MODEL}'"):
        if (
            (data_version is not None and v.tags.get("data_version") != data_version)
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
