"""Skip work whose inputs did not change: Dagster's own staleness rule, applied inside the step.

A materialization records its code version and the data version of every input (Dagster's
`dagster/code_version` and `dagster/input_data_version/<key>` tags). When a new run finds the
same code version, every input at the data version recorded last time, the same resource config,
and the output still in place, the asset re-asserts its last data version instead of recomputing:

    memo = Unchanged(context, config={"seed": 0}, outputs_present=path.exists())
    if memo.skip:
        return memo.result                          # the last metadata, marked as skipped
    ...
    return memo.stamp(dg.MaterializeResult(...))    # records the config fingerprint

Data versions are content hashes (ingest, dbt tables, profiles, embeddings) or registry versions
(models), so a re-run with nothing changed skips everything after ingest, and one changed file
recomputes exactly the assets downstream of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import dagster as dg

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_VERSION_TAG = "dagster/input_data_version/"
CONFIG_KEY = "config_sha256"
SKIPPED_KEY = "skipped"


def config_sha256(config: dict | None) -> str:
    return hashlib.sha256(
        json.dumps(config or {}, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]


def _latest(instance, key: dg.AssetKey, partition: str | None):
    record = instance.get_latest_data_version_record(key, partition_key=partition)
    return None if record is None else record.asset_materialization


def current_input_version(context, dep: dg.AssetKey, partition: str | None) -> str | None:
    """The data version Dagster will record for `dep` in this step: for a dep partitioned like this
    asset, sha256 of that partition's version (Dagster's rule for partition-mapped inputs); else the
    dep's latest version."""
    if (
        partition is not None
        and (same_partition := _latest(context.instance, dep, partition)) is not None
    ):
        version = same_partition.tags.get(DATA_VERSION_TAG)
        return version and hashlib.sha256(version.encode()).hexdigest()
    latest = _latest(context.instance, dep, None)
    return latest and latest.tags.get(DATA_VERSION_TAG)


def unchanged_reason(
    context, key: dg.AssetKey, config: dict | None
) -> tuple[dg.AssetMaterialization | None, str]:
    """The last materialization of `key` when it can stand for this run, and why (or why not)."""
    partitioned = context.assets_def.partitions_def is not None
    if partitioned and not context.has_partition_key:
        return None, "a range of partitions (checked one partition at a time only)"
    # an unpartitioned asset in a partitioned run still has one history, not one per partition
    partition = context.partition_key if partitioned else None
    last = _latest(context.instance, key, partition)
    if last is None:
        return None, "never materialized"
    tags = last.tags or {}
    code_version = context.assets_def.code_versions_by_key.get(key)
    if tags.get(CODE_VERSION_TAG) != code_version:
        return None, f"code version {tags.get(CODE_VERSION_TAG)} -> {code_version}"
    meta = last.metadata.get(CONFIG_KEY)
    if meta is None or meta.value != config_sha256(config):
        return None, "resource config changed"
    for dep in sorted(context.assets_def.asset_deps[key], key=lambda k: k.to_user_string()):
        recorded = tags.get(INPUT_VERSION_TAG + dep.to_user_string())
        now = current_input_version(context, dep, partition)
        if recorded is None or recorded != now:
            return None, f"input {dep.to_user_string()} changed"
    return (
        last,
        f"code version {code_version}, config and {len(context.assets_def.asset_deps[key])} "
        "input data versions unchanged",
    )


class Unchanged:
    """For single-asset steps: `skip`, `result` (when skipping) and `stamp` (when not)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        config: dict | None = None,
        outputs_present: bool | Callable[[dict], bool] = True,
    ):
        """`outputs_present`: whether the last output is still in place, or a function of the last
        materialization's metadata values that says so (e.g. its model version is still registered)."""
        self.config = config
        last, reason = unchanged_reason(context, context.asset_key, config)
        if last is not None and callable(outputs_present):
            outputs_present = outputs_present({k: v.value for k, v in last.metadata.items()})
        self.skip = last is not None and bool(outputs_present)
        if last is not None and not outputs_present:
            reason = "the last output is missing or incomplete"
        context.log.info(
            f"{context.asset_key.to_user_string()}: {'skipped' if self.skip else 'computing'} ({reason})"
        )
        if self.skip:
            metadata = {k: v for k, v in last.metadata.items() if k != SKIPPED_KEY}
            version = last.tags.get(DATA_VERSION_TAG)
            self.result = dg.MaterializeResult(
                metadata={**metadata, SKIPPED_KEY: reason},
                data_version=dg.DataVersion(version) if version else None,
            )

    def stamp(self, result: dg.MaterializeResult) -> dg.MaterializeResult:
        return result._replace(
            metadata={**(result.metadata or {}), CONFIG_KEY: config_sha256(self.config)}
        )
