"""Every setting reclake takes from the environment, read here and nowhere else in orchestration/.

The variables themselves (what each sets, its parser, default and kind) are listed in
core/variables.py; this module reads them and hands their values out.

Resources get their fields as ``dg.EnvVar`` (Dagster's convention: the UI shows which variable a
value came from, and Dagster reads it when a run starts); a variable whose value needs normalizing
(``RECLAKE_ENGINE=Spark``) or that Dagster cannot take as an EnvVar (float and bool fields) is passed
as the checked value.
Every set ``RECLAKE_*`` variable is checked when the definitions load, and a bad one fails there
with the variable, the value and what is allowed:

    build_defs()  ->  LakeResource(**resource_fields("lake")), ...   (definitions.py)
    resource_fields("training")   {"seed": EnvVar.int("RECLAKE_TRAIN_SEED")} when it is set
    setting("RECLAKE_NIGHTLY_AT") (2, 0)  -- definition-time values (schedule, partitions, Spark)
    default_value("RECLAKE_JUDGE_USERS")  200  -- what a variable gives now (run config defaults)

Nothing here writes the environment back to pass settings on: dbt gets the data home as a var,
Feast a RepoConfig (core/feast.py), MLflow a client with its URI, Dagster an instance on its folder.
The one exception is ``apply_process_switches``: telemetry and model-hub switches that libraries read
from the environment at import and that the tools reclake starts (dbt, feast) must inherit, and the
Python that PySpark starts its workers with (PySpark reads only PYSPARK_PYTHON for that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.core.variables import BY_NAME, VARIABLES, SettingError, Variable

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "transforms"
FEATURE_REPO_DIR = REPO_ROOT / "feature_repo"
DAGSTER_YAML = REPO_ROOT / "dagster.yaml"
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


def _parsed(variable: Variable, environ: Mapping[str, str]) -> tuple[str, Any] | None:
    """(raw, value) of a set variable, or None when it is unset or empty (the default applies)."""
    raw = environ.get(variable.name)
    if raw is None or not raw.strip():
        return None
    try:
        return raw, variable.parse(raw)
    except SettingError as err:
        raise SettingError(f"{variable.name}={raw!r}: {err}") from None


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Every set RECLAKE_* variable reclake reads holds a usable value, or SettingError."""
    environ = os.environ if environ is None else environ
    for variable in VARIABLES:
        _parsed(variable, environ)


def resource_fields(
    resource: str, environ: Mapping[str, str] | None = None, *, env_vars: bool = True
) -> dict:
    """The fields of one resource that the environment sets. With ``env_vars`` each is a ``dg.EnvVar``
    when Dagster reads the variable the same way; without, the parsed value (code outside a run)."""
    environ = os.environ if environ is None else environ
    fields: dict[str, Any] = {}
    for variable in VARIABLES:
        if variable.resource != resource or (parsed := _parsed(variable, environ)) is None:
            continue
        raw, value = parsed
        if env_vars and variable.env_source == "int":
            fields[variable.field] = dg.EnvVar.int(variable.name)
        elif env_vars and variable.env_source == "str" and raw == value:
            fields[variable.field] = dg.EnvVar(variable.name)
        else:  # a value Dagster would read differently (padded, mixed case) or cannot take (float, bool)
            fields[variable.field] = value
    if resource == "lake" and "home" not in fields:
        fields["home"] = default_value("RECLAKE_HOME", environ)
    return fields


def setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A definition-time value (schedule, partitions, Spark session): the parsed variable or its default."""
    return default_value(name, environ)


def default_value(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """What variable `name` gives now: its parsed, checked value when set, else its built-in default
    (a resource field's default where it sets one). The per-run knobs' run config defaults to this,
    so a run launched without config runs as the environment says."""
    variable = BY_NAME[name]
    parsed = _parsed(variable, os.environ if environ is None else environ)
    if parsed is not None:
        return parsed[1]
    if name == "RECLAKE_HOME":  # relative to the working directory, fixed when read
        return str(Path(variable.default).resolve())
    return variable.default


def home_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The data home as an absolute path (for code outside a Dagster run: the CLI, benches)."""
    return Path(resource_fields("lake", environ, env_vars=False)["home"]).expanduser().resolve()


def under_dagster_dev() -> bool:
    return bool(os.environ.get("DAGSTER_IS_DEV_CLI"))


def apply_process_switches() -> None:
    """Set (where unset) the switches that keep every library and tool offline and quiet, and make
    Spark's Python workers run this interpreter (its venv has torch, pandas, pyarrow; a cluster's
    workers need the same pinned environment at the same path, or PYSPARK_PYTHON set to one)."""
    for key, value in {**OFFLINE_ENV, "PYSPARK_PYTHON": sys.executable}.items():
        os.environ.setdefault(key, value)


def dagster_home(home: Path) -> Path:
    """Dagster's instance folder: DAGSTER_HOME when set (`make ui` sets it), else $RECLAKE_HOME/dagster."""
    return Path(os.environ.get("DAGSTER_HOME") or Path(home) / "dagster")


def ensure_dagster_home(home: Path) -> Path:
    """The instance folder, created and seeded with the repo's dagster.yaml (Dagster needs it to exist)."""
    folder = dagster_home(home)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "dagster.yaml"
    if DAGSTER_YAML.exists() and (
        not target.exists() or target.read_text() != DAGSTER_YAML.read_text()
    ):
        target.write_text(DAGSTER_YAML.read_text())
    return folder


def parse_dbt_project() -> Path:
    """`dbt parse` the project so dagster-dbt's manifest matches the SQL on disk (about 4 s).

    Runs before the definitions are imported: @dbt_assets reads target/manifest.json at import.
    """
    cmd = [
        DBT_EXECUTABLE,
        "parse",
        "--quiet",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=DBT_PROJECT_DIR)
    if result.returncode != 0:
        raise RuntimeError(
            f"dbt parse failed in {DBT_PROJECT_DIR}:\n{result.stdout}{result.stderr}"
        )
    return DBT_PROJECT_DIR / "target" / "manifest.json"
