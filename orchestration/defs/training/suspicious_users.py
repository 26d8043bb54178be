"""Group `training`: users who look like injected fake accounts, flagged before any model trains.

suspicious_users  models.robustness.poisoning_detector.detect on the TRAIN part of `splits`
                  (no labels) -> lake/evaluation/suspicious_users.parquet (user_id, score,
                  flagged, reasons); every recommender asset depends on it, and with
                  RECLAKE_TRAIN_POISONING_DEFENCE on (TrainingResource.poisoning_defence) the
                  flagged users are left out of what the models learn from, while evaluation
                  keeps the full split (the protocol is fixed).
"""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.robustness.poisoning_detector import DetectorConfig, detect
from orchestration.core.files import write_parquet_atomic
from orchestration.core.resources import LakeResource
from orchestration.core.ui import plt, png_markdown, save_chart
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits

POISONING_CODE_VERSION = "2"  # 2: the report records the splits version it was computed on
SPLITS_VERSION_KEY = b"reclake.splits_data_version"  # parquet metadata: which `splits` was checked


def flagged_user_ids(lake: LakeResource, splits_version: str) -> set[str]:
    """The users `suspicious_users` flagged on this version of `splits` (what the training defence
    leaves out); a missing or stale report is an error, never a silent empty or old list."""
    path = lake.paths.suspicious_users
    if not path.exists():
        raise dg.Failure(
            f"{path} not found: materialize suspicious_users before training "
            "(or set RECLAKE_TRAIN_POISONING_DEFENCE=0)"
        )
    checked = (pq.read_schema(path).metadata or {}).get(SPLITS_VERSION_KEY, b"").decode()
    if checked != splits_version:
        raise dg.Failure(
            f"{path} was computed on splits version {checked or '?'}, not the current "
            f"{splits_version}: materialize suspicious_users again before training"
        )
    frame = pd.read_parquet(path, columns=["user_id", "flagged"])
    return set(frame.loc[frame["flagged"], "user_id"])


def _score_histogram(report: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(report["score"], bins=50, color="tab:blue")
    ax.axvline(1.0, color="tab:red", linestyle="--", label="flag threshold")
    ax.set(xlabel="suspicion score (units of each rule's threshold)", ylabel="users", yscale="log")
    ax.legend()
    return save_chart(fig, path, dpi=80)


@dg.asset(
    group_name="training",
    code_version=POISONING_CODE_VERSION,
    deps=["splits"],
    kinds={"python"},
    description="Suspected fake (poisoning) users from TRAIN data: score, flagged, reasons; runs before training.",
)
def suspicious_users(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    path = lake.paths.suspicious_users
    if (memo := Unchanged(context, outputs_present=path.exists())).skip:
        return memo.result
    data, splits_version = load_splits(lake.warehouse_path)
    report = detect(data, DetectorConfig())
    table = pa.Table.from_pandas(report, preserve_index=False)
    table = table.replace_schema_metadata(
        {**table.schema.metadata, SPLITS_VERSION_KEY: splits_version.encode()}
    )
    digest = write_parquet_atomic(table, path)
    flagged = report[report["flagged"]]
    reasons = flagged["reasons"].str.split(",").explode().value_counts()
    context.log.info(f"suspicious_users: {len(flagged)} of {len(report)} users flagged")
    chart = _score_histogram(report, path.with_suffix(".png"))
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "n_users": len(report),
                "n_flagged": len(flagged),
                "share_flagged": round(len(flagged) / max(len(report), 1), 4),
                "score_p50": float(np.median(report["score"])) if len(report) else 0.0,
                "score_p99": float(np.quantile(report["score"], 0.99)) if len(report) else 0.0,
                "reasons": dg.MetadataValue.json({k: int(v) for k, v in reasons.items()}),
                "flagged_users": dg.MetadataValue.md(
                    flagged.head(20).to_markdown(index=False) if len(flagged) else "none"
                ),
                "score_histogram": png_markdown(chart),
                "path": dg.MetadataValue.path(str(path)),
                "splits_data_version": splits_version,
                "dagster/row_count": len(report),
            },
            data_version=dg.DataVersion(digest[:16]),
        )
    )
