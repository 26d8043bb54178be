"""MLflow, split by job: tracking (client, runs), registration (recommender versions registered,
crash cleanup), versions (finding them again), judges (the tuned judge's versions), gating (who
holds the champion alias) and champion (loading it). The names callers use are re-exported here, so
`from models import registry; registry.gate(client, data_version)` reads as one API."""

from models.registry.champion import Champion, NoChampionError, champion_version, load_champion
from models.registry.gating import SIMPLEST_FIRST, gate, last_gate
from models.registry.judges import latest_judge_probe, register_judge
from models.registry.registration import (
    Candidate,
    discard_version,
    log_and_register,
    mark_complete,
    reap_crashed,
)
from models.registry.tracking import (
    CHAMPION_ALIAS,
    COMPLETE_TAG,
    EXPERIMENT,
    JUDGE_MODEL,
    REGISTERED_MODEL,
    connect,
    log_report_run,
    metric_name,
    process_tags,
    tracking_uri,
)
from models.registry.versions import (
    VALID_BY_USER,
    artifacts_present,
    latest_per_model,
    latest_versions,
    load_version,
    local_artifact_dir,
    valid_by_user,
    version_row,
)

__all__ = [
    "CHAMPION_ALIAS",
    "COMPLETE_TAG",
    "EXPERIMENT",
    "JUDGE_MODEL",
    "REGISTERED_MODEL",
    "SIMPLEST_FIRST",
    "VALID_BY_USER",
    "Candidate",
    "Champion",
    "NoChampionError",
    "artifacts_present",
    "champion_version",
    "connect",
    "discard_version",
    "gate",
    "last_gate",
    "latest_judge_probe",
    "latest_per_model",
    "latest_versions",
    "load_champion",
    "load_version",
    "local_artifact_dir",
    "log_and_register",
    "log_report_run",
    "mark_complete",
    "metric_name",
    "process_tags",
    "reap_crashed",
    "register_judge",
    "tracking_uri",
    "valid_by_user",
    "version_row",
]
