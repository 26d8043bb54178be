"""The champion: the version behind `reclake-recommender@champion`, loaded for serving."""

from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException

from models.registry.tracking import CHAMPION_ALIAS, REGISTERED_MODEL
from models.registry.versions import artifacts_present


def champion_version(client: mlflow.MlflowClient):
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    except MlflowException:
        return None


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
    version = champion_version(client)
    if version is None:
        raise NoChampionError(
            f"no '{CHAMPION_ALIAS}' alias on registered model '{REGISTERED_MODEL}' yet: "
            "materialize the `training` group (its `champion_model` asset sets it) first"
        )
    if not artifacts_present(client, str(version.version)):
        raise NoChampionError(
            f"champion v{version.version}'s artifacts are missing: re-run the `training` group"
        )
    # the version's files, wherever the registry keeps them (no process-wide registry URI needed)
    pyfunc = mlflow.pyfunc.load_model(
        client.get_model_version_download_uri(REGISTERED_MODEL, str(version.version))
    )
    recommender = pyfunc.unwrap_python_model().recommender
    return Champion(
        str(version.version), version.run_id, version.tags.get("model_name", "?"), recommender
    )
