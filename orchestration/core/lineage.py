"""Lineage facts stamped on MLflow runs and output partitions: code and inputs of a materialization."""

import hashlib
import json
import subprocess
from functools import lru_cache
from pathlib import Path

from orchestration.core.settings import DBT_PROJECT_DIR, REPO_ROOT


@lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD of the repo the code runs from, '+dirty' when it has uncommitted changes; 'unknown'
    outside a git checkout (an installed wheel)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


VOLATILE_MANIFEST_KEYS = {"created_at", "generated_at", "invocation_id", "invocation_started_at"}


def _without_volatile(value):
    if isinstance(value, dict):
        return {
            k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_MANIFEST_KEYS
        }
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def dbt_manifest_sha256() -> str:
    """sha256 of the dbt manifest without what changes on every parse (timestamps, invocation
    ids): the same project gives the same hash, any change to a model, test, source or macro does not."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        return "missing"
    stable = _without_volatile(json.loads(manifest.read_text()))
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def run_tags(context, **inputs: str) -> dict[str, str]:
    """Tags tying an MLflow run (or any output) to the Dagster run, asset, inputs and code."""
    return {
        "dagster_run_id": context.run.run_id,
        "dagster_asset_key": context.asset_key.to_user_string(),
        "dbt_manifest_sha256": dbt_manifest_sha256(),
        "git_commit": git_commit(),
        **{k: str(v) for k, v in inputs.items()},
    }


def raw_files_sha256(dataset_facts: Path) -> str:
    """'file=sha256,...' of the source files ingest read (from its dataset.json)."""
    if not dataset_facts.exists():
        return "missing"
    return ",".join(
        f"{f['file']}={f['sha256']}" for f in json.loads(dataset_facts.read_text())["files"]
    )
