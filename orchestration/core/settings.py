"""Where reclake keeps its state and which dataset it reads: resolved once from the environment.

Everything a run writes lives under one data home (``RECLAKE_HOME``, default ``./.reclake``);
deleting it is a full reset. Dagster's own instance lives in ``$RECLAKE_HOME/dagster``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "transforms"
FEATURE_REPO_DIR = REPO_ROOT / "feature_repo"
# The dbt and feast next to this interpreter: the venv's bin/ need not be on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")
FEAST_EXECUTABLE = str(Path(sys.executable).parent / "feast")

# Offline by design: no tool may phone home or reach a model hub at run time.
OFFLINE_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "FEAST_USAGE": "False",
    "DAGSTER_DISABLE_TELEMETRY": "true",
    "SPARK_LOCAL_IP": "127.0.0.1",  # else Spark binds the machine's external interface
}


def reclake_home() -> Path:
    return Path(os.environ.get("RECLAKE_HOME", ".reclake")).expanduser().resolve()


def configure_process_env() -> Path:
    """Make RECLAKE_HOME absolute and set the offline/telemetry switches for this process and the
    tools it starts (dbt runs as a subprocess and reads RECLAKE_HOME from its environment)."""
    home = reclake_home()
    os.environ["RECLAKE_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_HOME", str(home / "dagster"))
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    # Spark's Python workers run this interpreter (its venv has torch, pandas, pyarrow); a cluster's
    # workers need the same pinned environment at the same path, or PYSPARK_PYTHON set to one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("RECLAKE_SPARK_MASTER", "local[*]")  # feature_store.spark.yaml expands it
    return home


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME must exist before Dagster starts; seed it with the repo's dagster.yaml."""
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    source = REPO_ROOT / "dagster.yaml"
    if source.exists() and (not target.exists() or target.read_text() != source.read_text()):
        target.write_text(source.read_text())
    return dagster_home


def parse_dbt_project() -> Path:
    """`dbt parse` the project so dagster-dbt's manifest matches the SQL on disk (about 4 s).

    Runs before the definitions are imported: @dbt_assets reads target/manifest.json at import.
    """
    cmd = [DBT_EXECUTABLE, "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=DBT_PROJECT_DIR)
    if result.returncode != 0:
        raise RuntimeError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{result.stdout}{result.stderr}")
    return DBT_PROJECT_DIR / "target" / "manifest.json"
