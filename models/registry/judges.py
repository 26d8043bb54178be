"""Registered tuned judges: one version of `reclake-judge` per fitted probe (never a candidate for
champion), and the newest one fitted on a data version.
"""

from pathlib import Path

import mlflow

from models.registry.tracking import JUDGE_MODEL
from models.registry.versions import local_artifact_dir


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
