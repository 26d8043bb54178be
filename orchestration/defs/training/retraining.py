"""The retraining policy in the pipeline: a sequential model's asset (sasrec_model, llm_sasrec_model)
warm-starts from that model's newest registered version, unless the policy
(models/recsys/warm_start.py, RECLAKE_RETRAIN_* variables) calls for a full retrain: weekly by data
time, or sooner when the events since the last full retrain or the share on unseen items pass a
threshold, or when the model's settings changed.

Each version is tagged with its data window and how it was trained (`training` = full | warm, the
policy's reason, the version it started from, the last full retrain's last day and event count),
so a warm chain can be traced back to its full retrain in the MLflow UI.
"""

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from models import registry
from models.common.files import sha256_file
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import text_vectors
from models.recsys.serving import SavedRecommender
from models.recsys.warm_start import RetrainPolicy
from orchestration.core.warehouse import query

SEQUENTIAL = ("sasrec", "llm_sasrec")


@dataclass
class DataWindow:
    first_day: str
    last_day: str
    events: int


@dataclass
class Plan:
    kind: str  # "full" | "warm"
    reason: str
    tags: dict[str, str] = field(default_factory=dict)  # registered on the version
    previous: SavedRecommender | None = None
    changed_users: np.ndarray | None = None


def data_window(warehouse: Path) -> DataWindow:
    row = query(
        warehouse,
        "select strftime(min(event_ts), '%Y-%m-%d') as first, "
        "strftime(max(event_ts), '%Y-%m-%d') as last, count(*) as n from main.splits",
    ).iloc[0]
    return DataWindow(str(row["first"]), str(row["last"]), int(row["n"]))


def plan_retraining(
    client, model, data: SplitData, window: DataWindow, policy: RetrainPolicy
) -> Plan:
    """Full or warm for `model` (unfitted) on `data`, and what a warm start needs."""
    full_tags = {"full_last_day": window.last_day, "full_events": str(window.events)}
    last = registry.latest_per_model(client, None).get(model.name)
    if last is None or "full_last_day" not in last.tags:
        reason = "no earlier version of this model to start from"
        return Plan("full", reason, {**_tags(window, "full", reason), **full_tags})
    previous = registry.load_version(client, last.version)
    if _settings(previous.model) != _settings(model):
        reason = f"settings changed since v{last.version}"
        return Plan("full", reason, {**_tags(window, "full", reason), **full_tags})
    known = np.isin(data.items[_all_items(data)], previous.items)
    kind, reason = policy.decide(
        (date.fromisoformat(window.last_day) - date.fromisoformat(last.tags["full_last_day"])).days,
        window.events - int(last.tags["full_events"]),
        int(last.tags["full_events"]),
        int((~known).sum()),
    )
    if kind == "full":
        return Plan(kind, reason, {**_tags(window, kind, reason), **full_tags})
    tags = {
        **_tags(window, kind, reason),
        "warm_from_version": str(last.version),
        "full_last_day": last.tags["full_last_day"],
        "full_events": last.tags["full_events"],
    }
    return Plan(kind, reason, tags, previous, changed_users(previous, data))


def _tags(window: DataWindow, kind: str, reason: str) -> dict[str, str]:
    return {
        "training": kind,
        "training_reason": reason,
        "data_window": f"{window.first_day}..{window.last_day}",
    }


def _settings(model) -> dict:
    return {k: v for k, v in asdict(model.config).items() if k != "device"}


def _all_items(data: SplitData) -> np.ndarray:
    """Every event's item index (train, valid and test)."""
    held_out = np.concatenate([data.valid, data.test])
    return np.concatenate([*data.train, held_out[held_out >= 0]]).astype(np.int64)


def changed_users(previous: SavedRecommender, data: SplitData) -> np.ndarray:
    """Indices into data.users of the users whose history grew since `previous` was saved (new
    users included)."""
    before = pd.Series([len(h) for h in previous.histories], index=previous.users)
    now = pd.Series([len(h) for h in data.full_histories()], index=data.users)
    grew = now.to_numpy() != before.reindex(now.index).fillna(-1).to_numpy()
    return np.flatnonzero(grew)


def item_vectors(model, items_path: Path, data: SplitData) -> tuple[np.ndarray | None, dict]:
    """The text vectors new items' rows are built from: LLM-SASRec's own, else the title and
    profile vectors of item_text_embeddings when they exist; and their file's hash for lineage."""
    if getattr(model, "item_text", None) is not None:
        return model.item_text, {}
    if not items_path.exists():
        return None, {}
    vectors, _ = text_vectors(
        data.items,
        pd.read_parquet(items_path),
        "item_id",
        ["title_embedding", "profile_embedding"],
    )
    return vectors, {"warm_item_vectors_sha256": sha256_file(items_path)}
