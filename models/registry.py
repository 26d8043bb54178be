"""MLflow: one run per trained model, one version of `reclake-recommender` per run, and the gate
that moves the `champion` alias.

Tracking and registry live in one folder (reclake's is `$RECLAKE_HOME/mlflow/`: sqlite db + artifacts), so
    mlflow ui --backend-store-uri sqlite:///$RECLAKE_HOME/mlflow/mlflow.db
shows them. Everything goes through an explicit `MlflowClient` on that folder (`connect`): nothing
sets MLflow's process-wide tracking URI or active run, so two data homes can be used in one process.
A version is created only after the run logged everything; `discard_version` removes
one whose follow-up work failed, and the gate never aliases a version whose artifacts are missing.
A version counts (for comparison, the gate, serving) only once `mark_complete` has tagged it, the
last step of its asset: a process killed in between leaves an incomplete version, which
`reap_crashed` deletes on the next training, with the RUNNING runs of dead processes (-> KILLED).
"""

import math
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking.context.registry import resolve_tags
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from models.recsys.evaluation import METRICS, Evaluation, ndcg_by_user, paired_interval
from models.failpoints import failpoint
from models.files import process_alive
from models.recsys.base import FitResult, save_recommender
from models.recsys.serving import RecommenderPyfunc, SavedRecommender

REGISTERED_MODEL = "reclake-recommender"
CHAMPION_ALIAS = "champion"
JUDGE_MODEL = "reclake-judge"  # tuned judges (models/judge_probe.py): never candidates for champion
EXPERIMENT = "reclake"
MODEL_CODE = Path(__file__).resolve().parent  # the `models` package, shipped inside each MLflow model
# user ids in; ranked items out; `k` (how many per user) as a parameter
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "user_id")]),
    outputs=Schema([ColSpec("string", "user_id"), ColSpec("string", "item_id"), ColSpec("long", "rank"),
                    ColSpec("double", "score")]),
    params=ParamSchema([ParamSpec("k", "long", 10)]))
COMPLETE_TAG = "complete"
VALID_BY_USER = "evaluation/valid_ndcg_at_10_by_user.parquet"  # what the gate's paired comparison reads
# The gate prefers the first of these that the best candidate does not beat beyond noise: a model
# that is not measurably better is not worth what it costs to train, serve and explain.
SIMPLEST_FIRST = ("popularity", "ease", "sasrec", "llm_sasrec", "two_stage")
PID_TAG, HOST_TAG = "reclake.pid", "reclake.host"  # which process wrote a run or version
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy==2.4.6", "pandas==2.3.3", "mlflow==3.17.2", "scipy", "lightgbm==4.7.0"]


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
def _run(client: mlflow.MlflowClient, run_name: str, tags: dict[str, str]) -> Iterator[str]:
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


def _log(client: mlflow.MlflowClient, run_id: str, *, params: dict | None = None, metrics: dict | None = None,
         steps: list[tuple[str, float, int]] = ()) -> None:
    """Params and metrics in one batch (MLflow takes up to 100 params and 1000 metrics a batch)."""
    now = int(time.time() * 1000)
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in (params or {}).items()],
                     metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
                     + [Metric(k, float(v), now, step) for k, v, step in steps])


def log_report_run(client: mlflow.MlflowClient, run_name: str, tags: dict[str, str], *, params: dict | None = None,
                   metrics: dict | None = None, dicts: dict[str, dict] | None = None,
                   tables: dict[str, pd.DataFrame] | None = None,
                   artifacts: dict[str, list[Path]] | None = None) -> str:
    """One finished run of a report (model comparison, judge): params, metrics, JSON files, tables
    and files by artifact folder. Returns its run id."""
    with _run(client, run_name, tags) as run_id:
        _log(client, run_id, params=params, metrics=metrics)
        for name, payload in (dicts or {}).items():
            client.log_dict(run_id, payload, name)
        for name, table in (tables or {}).items():
            client.log_table(run_id, table, name)
        for folder, paths in (artifacts or {}).items():
            for path in paths:
                client.log_artifact(run_id, str(path), folder)
    return run_id


def register_judge(client: mlflow.MlflowClient, run_id: str, artifact_folder: str, tags: dict[str, str]) -> str:
    """A version of the tuned judge registered from a finished run's artifact folder; its number."""
    if not client.search_registered_models(f"name='{JUDGE_MODEL}'"):
        client.create_registered_model(JUDGE_MODEL, description="reclake's tuned judge: a probe on an LLM's hidden states")
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_folder}"
    return client.create_model_version(JUDGE_MODEL, source, run_id=run_id, tags=tags).version


def latest_judge_probe(client: mlflow.MlflowClient, data_version: str) -> tuple[str, Path] | None:
    """The newest reclake-judge version fitted on this data version, and its probe file (a local
    artifact store); None when there is none."""
    versions = [v for v in client.search_model_versions(f"name='{JUDGE_MODEL}'") if v.tags.get("data_version") == data_version]
    if not versions:
        return None
    newest = str(max(versions, key=lambda v: int(v.version)).version)
    folder = local_artifact_dir(client, newest, JUDGE_MODEL)
    return (newest, folder / "probe.npz") if folder is not None else None


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


def log_and_register(client: mlflow.MlflowClient, model, data, fit: FitResult, valid: Evaluation, test: Evaluation, *,
                     workdir: Path, run_tags: dict[str, str], version_tags: dict[str, str], plots: list[Path]) -> Candidate:
    """Log one finished training as an MLflow run and register its model. Anything raised before the
    last line leaves the run FAILED and no model version behind. The version is not complete
    (not compared, gated or served) until `mark_complete`."""
    run_tags = {**run_tags, **process_tags()}
    with _run(client, f"{model.name}-seed{model.config.seed}", run_tags) as run_id:
        _log(client, run_id,
             params={**{k: str(v) for k, v in asdict(model.config).items()}, "model_name": model.name,
                     "device": model.device, "n_users": data.n_users, "n_items": data.n_items},
             metrics={**{metric_name("valid", k): v for k, v in valid.metrics.items()},
                      **{metric_name("test", k): v for k, v in test.metrics.items()},
                      "training_seconds": fit.seconds, "seconds_per_epoch": fit.seconds_per_epoch,
                      "epochs": len(fit.epochs), "best_epoch": fit.best_epoch},
             steps=[("train_loss", e["train_loss"], e["epoch"]) for e in fit.epochs if not math.isnan(e["train_loss"])]
             + [("valid_ndcg_at_10_by_epoch", e["valid_ndcg@10"], e["epoch"]) for e in fit.epochs]
             + [("grid_valid_ndcg_at_10", t["valid_ndcg@10"], step) for step, t in enumerate(fit.trials)])
        if fit.trials:
            client.log_table(run_id, pd.DataFrame(fit.trials), "grid.json")
        for plot in plots:
            client.log_artifact(run_id, str(plot), "plots")
        workdir.mkdir(parents=True, exist_ok=True)
        by_user = workdir / Path(VALID_BY_USER).name
        pd.DataFrame({"user_id": [str(u) for u in data.users[valid.users]],
                      "ndcg_at_10": ndcg_by_user(valid.topk, data.target("valid")[valid.users])}).to_parquet(by_user)
        client.log_artifact(run_id, str(by_user), str(Path(VALID_BY_USER).parent))
        checkpoint = save_recommender(model, data, workdir / "recommender.pt")
        model_dir = Path(tempfile.mkdtemp(prefix="pyfunc-", dir=workdir)) / "model"  # save_model wants a new folder
        mlflow.pyfunc.save_model(
            path=str(model_dir), python_model=RecommenderPyfunc(), artifacts={"recommender": str(checkpoint)},
            signature=SIGNATURE, input_example=pd.DataFrame({"user_id": [str(data.users[0])]}),
            pip_requirements=PIP_REQUIREMENTS, code_paths=[str(MODEL_CODE)])
        client.log_artifacts(run_id, str(model_dir), "model")
        tags = {**version_tags, **process_tags(), "model_name": model.name,
                # the gate's score: on the full split, like the logged metric (fit may have seen fewer users)
                metric_name("valid", "ndcg@10"): repr(valid.metrics["ndcg@10"])}
        if not client.search_registered_models(f"name='{REGISTERED_MODEL}'"):
            client.create_registered_model(REGISTERED_MODEL)
        version = client.create_model_version(REGISTERED_MODEL, f"{client.get_run(run_id).info.artifact_uri}/model",
                                              run_id=run_id, tags=tags)
        failpoint("registry.version_registered")  # crash tests: a version exists, its run is still RUNNING
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


def _local_path(uri: str) -> Path | None:
    """An artifact URI as a path on this disk (None for a remote artifact store)."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def local_artifact_dir(client: mlflow.MlflowClient, version: str, name: str = REGISTERED_MODEL) -> Path | None:
    """Where a version's model files are on disk (None for a remote artifact store)."""
    return _local_path(client.get_model_version_download_uri(name, version))


def load_version(client: mlflow.MlflowClient, version: str):
    """A registered recommender version's checkpoint as a SavedRecommender, read in place (no pyfunc
    environment): what a model over another (two_stage) and the benches load."""
    return SavedRecommender.load(local_artifact_dir(client, version) / "artifacts" / "recommender.pt")


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


def latest_versions(client: mlflow.MlflowClient, data_version: str) -> list[dict]:
    """Each model's newest complete version on this data version, with its run's metrics, by model name."""
    return [version_row(client, name, v) for name, v in sorted(latest_per_model(client, data_version).items())]


def version_row(client: mlflow.MlflowClient, name: str, version) -> dict:
    """A model version with its run's valid/test metrics (one row of model_comparison)."""
    metrics = client.get_run(version.run_id).data.metrics
    return {"model_name": name, "version": str(version.version), "run_id": version.run_id,
            **{metric_name(s, m): metrics.get(metric_name(s, m), float("nan")) for s in ("valid", "test") for m in METRICS},
            "seconds_per_epoch": metrics.get("seconds_per_epoch", float("nan"))}


def _champion(client: mlflow.MlflowClient):
    try:
        return client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    except MlflowException:
        return None


def valid_by_user(client: mlflow.MlflowClient, version) -> pd.Series | None:
    """A version's valid NDCG@10 per user (user_id index); None for a version logged without it."""
    root = _local_path(client.get_run(version.run_id).info.artifact_uri)
    try:
        if root is not None:  # read in place (no download, no progress bar)
            path = root / VALID_BY_USER
            return pd.read_parquet(path).set_index("user_id")["ndcg_at_10"] if path.is_file() else None
        with tempfile.TemporaryDirectory() as folder:
            return pd.read_parquet(client.download_artifacts(version.run_id, VALID_BY_USER, folder)
                                   ).set_index("user_id")["ndcg_at_10"]
    except (MlflowException, OSError):
        return None


def _simplicity(version) -> int:
    name = version.tags.get("model_name", "")
    return SIMPLEST_FIRST.index(name) if name in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def _interval(client: mlflow.MlflowClient, a, b, cache: dict) -> tuple[float, float] | None:
    """95% bootstrap interval of valid NDCG@10 of version a minus b, paired over their users."""
    for v in (a, b):
        if v.version not in cache:
            cache[v.version] = valid_by_user(client, v)
    if cache[a.version] is None or cache[b.version] is None:
        return None
    pair = pd.concat([cache[a.version], cache[b.version]], axis=1, join="inner").to_numpy()
    return paired_interval(pair[:, 0] - pair[:, 1]) if len(pair) else None


def gate(client: mlflow.MlflowClient, data_version: str) -> dict:
    """Give `champion` to a candidate on this data version by VALID NDCG@10 (test never takes part),
    robust to the noise of one training run on a few hundred users:

    - the candidate is the simplest model (SIMPLEST_FIRST) whose valid NDCG@10 the best one does not
      beat beyond noise: the 95% paired bootstrap interval over users of (best - it) includes 0;
    - it replaces a champion on this data version only when it beats it beyond noise (the interval
      of candidate - champion lies above 0).

    Versions logged without per-user valid scores are compared on the mean alone, as before."""
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
    cache: dict = {}
    best = max(candidates, key=lambda v: (float(v.tags[valid_tag]), -int(v.version)))
    intervals = {v.version: _interval(client, best, v, cache) for v in candidates if v is not best}
    for v in candidates:
        if intervals.get(v.version) is not None:
            decision["candidates"][v.tags["model_name"]]["best_minus_this_ci95"] = [round(x, 4) for x in intervals[v.version]]
    chosen, within = best, "the best valid NDCG@10"
    for v in sorted(candidates, key=lambda v: (_simplicity(v), -float(v.tags[valid_tag]))):
        if v is best:
            break  # nothing simpler is within noise of it
        if intervals[v.version] is not None and intervals[v.version][0] <= 0:
            low, high = intervals[v.version]
            chosen, within = v, (f"the simplest within noise of the best ({best.tags['model_name']} v{best.version}, "
                                 f"best - this in [{low:.4f}, {high:.4f}])")
            break
    chosen_valid, chosen_version = float(chosen.tags[valid_tag]), str(chosen.version)
    decision.update(candidate=chosen_version, candidate_model=chosen.tags["model_name"], candidate_valid_ndcg10=chosen_valid)
    if current is None:
        promote, reason = True, f"no champion yet; {within}"
    elif not artifacts_present(client, str(current.version)):
        promote, reason = True, f"champion v{current.version}'s artifacts are missing"
    elif current.tags.get("data_version") != data_version:
        promote, reason = True, f"champion v{current.version} was chosen on another data version; its valid score does not compare"
    elif str(current.version) == chosen_version:
        promote, reason = False, "the chosen candidate already is the champion"
    else:
        interval = _interval(client, chosen, current, cache)
        old = decision["champion_before_valid_ndcg@10"]
        if interval is None:
            promote = chosen_valid > old
            reason = f"valid NDCG@10 {chosen_valid:.4f} {'>' if promote else '<='} champion's {old:.4f}"
        else:
            promote = interval[0] > 0
            reason = (f"valid NDCG@10 {chosen_valid:.4f} vs champion's {old:.4f}: difference in "
                      f"[{interval[0]:.4f}, {interval[1]:.4f}] (95%, paired over users), "
                      f"{'above 0' if promote else 'not above 0: within noise'}")
    if promote:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, chosen_version)
    champion = chosen_version if promote else decision["champion_before"]
    decision.update(decision="promote" if promote else "keep", reason=reason, champion=champion)
    client.set_model_version_tag(REGISTERED_MODEL, chosen_version, "gate_decision", f"{decision['decision']}: {reason}")
    client.set_registered_model_tag(REGISTERED_MODEL, "last_gate", f"{decision['decision']} v{chosen_version}: {reason}")
    return decision


def last_gate(client: mlflow.MlflowClient) -> dict | None:
    """The gate's last decision and reason (the registered model's `last_gate` tag) and the champion."""
    models = client.search_registered_models(f"name='{REGISTERED_MODEL}'")
    if not models or "last_gate" not in models[0].tags:
        return None
    head, _, reason = models[0].tags["last_gate"].partition(": ")  # "promote v4: <reason>"
    current = _champion(client)
    return {"decision": head.split(" ")[0], "reason": reason, "champion": current.version if current else None}


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
    # the version's files, wherever the registry keeps them (no process-wide registry URI needed)
    pyfunc = mlflow.pyfunc.load_model(client.get_model_version_download_uri(REGISTERED_MODEL, str(version.version)))
    recommender = pyfunc.unwrap_python_model().recommender
    return Champion(str(version.version), version.run_id, version.tags.get("model_name", "?"), recommender)
