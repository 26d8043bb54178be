"""Every setting reclake takes from the environment, read here and nowhere else in orchestration/.

Resources get their fields as ``dg.EnvVar`` (Dagster's convention: the UI shows which variable a
value came from, and Dagster reads it when a run starts); a variable whose value needs normalizing
(``RECLAKE_ENGINE=Spark``) or that Dagster cannot take as an EnvVar (float and bool fields) is passed
as the checked value.
Every set ``RECLAKE_*`` variable is checked when the definitions load, and a bad one fails there
with the variable, the value and what is allowed:

    build_defs()  ->  LakeResource(**resource_fields("lake")), ...   (definitions.py)
    resource_fields("training")   {"seed": EnvVar.int("RECLAKE_TRAIN_SEED")} when it is set
    setting("RECLAKE_NIGHTLY_AT") (2, 0)  -- definition-time values (schedule, partitions, Spark)

Nothing here writes the environment back to pass settings on: dbt gets the data home as a var,
Feast a RepoConfig (core/feast.py), MLflow a client with its URI, Dagster an instance on its folder.
The one exception is ``apply_process_switches``: telemetry and model-hub switches that libraries read
from the environment at import and that the tools reclake starts (dbt, feast) must inherit, and the
Python that PySpark starts its workers with (PySpark reads only PYSPARK_PYTHON for that).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from models.llm.embedded import RUNTIMES
from models.llm.ladder import LADDER

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "transforms"
FEATURE_REPO_DIR = REPO_ROOT / "feature_repo"
DAGSTER_YAML = REPO_ROOT / "dagster.yaml"
# The dbt and feast next to this interpreter: the venv's bin/ need not be on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")
FEAST_EXECUTABLE = str(Path(sys.executable).parent / "feast")
DEFAULT_HOME = ".reclake"  # relative to the working directory (DESIGN.md: ./.reclake)

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


class SettingError(ValueError):
    """A RECLAKE_* variable holds a value reclake cannot use."""


# --- parsers: raw text -> value, or SettingError naming what is allowed ---------------------------


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    allowed = f"a whole number >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise SettingError(f"expected {allowed}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise SettingError(f"expected {allowed}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingError("expected a number of seconds > 0, e.g. 60 or 2.5") from None
    if not value > 0 or value == float("inf"):
        raise SettingError("expected a number of seconds > 0, e.g. 60 or 2.5")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("1", "0", "true", "false"):
        raise SettingError("expected one of 1, 0, true, false")
    return lowered in ("1", "true")


EMBEDDED_MODELS = tuple(LADDER)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise SettingError(f"expected one of {', '.join(allowed)}")
        return value

    return parse


def _device(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise SettingError("expected auto, cpu, cuda, cuda:N or mps")
    return value


def _text(text: str) -> str:
    return text.strip()


def _url(text: str) -> str:
    value = text.strip()
    if not re.match(r"https?://[^/\s]+", value):
        raise SettingError("expected an http(s) URL, e.g. http://127.0.0.1:8011/v1")
    return value


def _existing_path(text: str) -> str:
    if not Path(text).expanduser().exists():
        raise SettingError("no such file or folder")
    return text


def _dataset(text: str) -> str:
    from orchestration.core.datasets import NAMED_DATASETS

    value = text.strip()
    if value not in NAMED_DATASETS and not Path(value).expanduser().is_dir():
        raise SettingError(
            f"unknown dataset. Use one of {', '.join(NAMED_DATASETS)} or the path of a folder "
            "holding interactions.csv|parquet"
        )
    return value


def _rating_scale(text: str) -> str:
    from orchestration.core.datasets import DatasetError, parse_rating_scale

    try:
        parse_rating_scale(text, (1.0, 5.0))
    except DatasetError:
        raise SettingError("expected 'min,max' with min below max, e.g. 1,5 or 0.5,5") from None
    return text


def _date(text: str) -> str:
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise SettingError("expected a date YYYY-MM-DD, e.g. 2026-01-01") from None


def _clock(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise SettingError("expected HH:MM in UTC, 00:00 to 23:59, e.g. 02:00")
    return int(match[1]), int(match[2])


def _memory(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"\d+[kmgt]?", value):
        raise SettingError("expected a JVM memory size such as 512m or 4g")
    return value


# --- the variables ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    parse: Callable[[str], Any]
    resource: str | None = None  # the resource key whose field it sets; None: read when defs load
    field: str = ""
    default: Any = None  # for definition-time values
    env_source: str | None = (
        None  # "str" | "int": Dagster reads the variable itself (no float or bool EnvVar)
    )


VARIABLES = [
    # where state lives and what data it reads
    Variable("RECLAKE_HOME", _text, "lake", "home", env_source="str"),
    Variable("RECLAKE_DATASET", _dataset, "lake", "dataset", env_source="str"),
    Variable("RECLAKE_DATA_DIR", _existing_path, "lake", "data_dir", env_source="str"),
    Variable("RECLAKE_RATING_SCALE", _rating_scale, "lake", "rating_scale", env_source="str"),
    Variable("RECLAKE_ENGINE", _choice("duckdb", "spark"), "lake", "engine", env_source="str"),
    # the LLM that writes profiles (and judges)
    Variable(
        "RECLAKE_LLM_BACKEND",
        _choice("embedded", "hf", "openai"),
        "llm",
        "backend",
        env_source="str",
    ),
    Variable(
        "RECLAKE_LLM_EMBEDDED_MODEL",
        _choice(*EMBEDDED_MODELS),
        "llm",
        "embedded_model",
        env_source="str",
    ),
    Variable("RECLAKE_LLM_RUNTIME", _choice(*RUNTIMES), "llm", "runtime", env_source="str"),
    Variable("RECLAKE_LLM_THREADS", _integer(1), "llm", "torch_threads", env_source="int"),
    Variable("RECLAKE_LLM_MODEL_PATH", _existing_path, "llm", "model_path", env_source="str"),
    Variable("RECLAKE_LLM_BASE_URL", _url, "llm", "base_url", env_source="str"),
    Variable("RECLAKE_LLM_MODEL", _text, "llm", "model", env_source="str"),
    Variable("RECLAKE_LLM_DEVICE", _device, "llm", "device", env_source="str"),
    Variable("RECLAKE_LLM_MODEL_CACHE", _text, "llm", "model_cache_dir", env_source="str"),
    Variable("RECLAKE_LLM_BATCH_SIZE", _integer(1), "llm", "batch_size", env_source="int"),
    Variable("RECLAKE_LLM_MAX_ITEMS", _integer(0), "llm", "max_items", env_source="int"),
    Variable("RECLAKE_LLM_MAX_USERS", _integer(0), "llm", "max_users", env_source="int"),
    Variable(
        "RECLAKE_LLM_ITEM_MAX_NEW_TOKENS",
        _integer(1),
        "llm",
        "item_max_new_tokens",
        env_source="int",
    ),
    Variable(
        "RECLAKE_LLM_USER_MAX_NEW_TOKENS",
        _integer(1),
        "llm",
        "user_max_new_tokens",
        env_source="int",
    ),
    Variable(
        "RECLAKE_LLM_TIMEOUT_S", _positive_float, "llm", "timeout_s"
    ),  # Dagster has no float source
    Variable("RECLAKE_LLM_MAX_RETRIES", _integer(0), "llm", "max_retries", env_source="int"),
    # training
    Variable("RECLAKE_TRAIN_DEVICE", _device, "training", "device", env_source="str"),
    Variable("RECLAKE_TRAIN_SEED", _integer(0), "training", "seed", env_source="int"),
    Variable("RECLAKE_TRAIN_THREADS", _integer(1), "training", "torch_threads", env_source="int"),
    Variable("RECLAKE_TRAIN_MAX_EPOCHS", _integer(1), "training", "max_epochs", env_source="int"),
    Variable("RECLAKE_TRAIN_PATIENCE", _integer(1), "training", "patience", env_source="int"),
    Variable(
        "RECLAKE_TRAIN_LLM_ITEM_TEXT",
        _choice("title", "profile", "title+profile"),
        "training",
        "llm_item_text",
        env_source="str",
    ),
    Variable("RECLAKE_TRAIN_LLM_USER_PROFILE", _boolean, "training", "llm_use_user_profile"),
    Variable("RECLAKE_TRAIN_POISONING_DEFENCE", _boolean, "training", "poisoning_defence"),
    Variable(
        "RECLAKE_TRAIN_TWO_STAGE_BASE",
        _choice("popularity", "ease", "sasrec", "llm_sasrec"),
        "training",
        "two_stage_base",
        env_source="str",
    ),
    Variable(
        "RECLAKE_TRAIN_TWO_STAGE_N", _integer(20), "training", "two_stage_n", env_source="int"
    ),
    # nightly serving
    Variable("RECLAKE_SERVING_TOP_K", _integer(1), "serving", "top_k", env_source="int"),
    Variable(
        "RECLAKE_SERVING_CHUNK_USERS", _integer(1), "serving", "chunk_users", env_source="int"
    ),
    Variable("RECLAKE_SERVING_START_DATE", _date, default="2026-01-01"),
    Variable("RECLAKE_NIGHTLY_AT", _clock, default=(2, 0)),
    # the judge (its first backend is the llm resource; RECLAKE_JUDGE2_* add a second)
    Variable(
        "RECLAKE_JUDGE_KIND", _choice("probe", "zero-shot"), "judge", "kind", env_source="str"
    ),
    Variable("RECLAKE_JUDGE_USERS", _integer(1), "judge", "n_users", env_source="int"),
    Variable("RECLAKE_JUDGE_K", _integer(1), "judge", "k", env_source="int"),
    Variable("RECLAKE_JUDGE_RANDOM_ITEMS", _integer(1), "judge", "n_random", env_source="int"),
    Variable("RECLAKE_JUDGE_SEED", _integer(0), "judge", "seed", env_source="int"),
    Variable(
        "RECLAKE_JUDGE_EMBEDDED_MODEL",
        _choice(*EMBEDDED_MODELS),
        "judge",
        "embedded_model",
        env_source="str",
    ),
    Variable("RECLAKE_JUDGE_RUNTIME", _choice(*RUNTIMES), "judge", "runtime", env_source="str"),
    Variable(
        "RECLAKE_JUDGE2_BACKEND",
        _choice("embedded", "hf", "openai"),
        "judge",
        "second_backend",
        env_source="str",
    ),
    Variable(
        "RECLAKE_JUDGE2_MODEL_PATH", _existing_path, "judge", "second_model_path", env_source="str"
    ),
    Variable("RECLAKE_JUDGE2_BASE_URL", _url, "judge", "second_base_url", env_source="str"),
    Variable("RECLAKE_JUDGE2_MODEL", _text, "judge", "second_model", env_source="str"),
    # the simulated users (the probe kind reads the judge's tuned probe; zero-shot an LLM of the ladder)
    Variable(
        "RECLAKE_SIM_KIND", _choice("probe", "zero-shot"), "simulator", "kind", env_source="str"
    ),
    Variable("RECLAKE_SIM_USERS", _integer(1), "simulator", "n_users", env_source="int"),
    Variable("RECLAKE_SIM_PAGE_SIZE", _integer(2, 20), "simulator", "page_size", env_source="int"),
    Variable("RECLAKE_SIM_MODELS", _integer(1), "simulator", "max_models", env_source="int"),
    Variable("RECLAKE_SIM_SEED", _integer(0), "simulator", "seed", env_source="int"),
    Variable(
        "RECLAKE_SIM_EMBEDDED_MODEL",
        _choice(*EMBEDDED_MODELS),
        "simulator",
        "embedded_model",
        env_source="str",
    ),
    Variable("RECLAKE_SIM_RUNTIME", _choice(*RUNTIMES), "simulator", "runtime", env_source="str"),
    # Spark (RECLAKE_ENGINE=spark); the dbt profile reads the same variables
    Variable("RECLAKE_SPARK_MASTER", _text, default="local[*]"),
    Variable("RECLAKE_SPARK_DRIVER_MEMORY", _memory, default="4g"),
    Variable("RECLAKE_SPARK_EXECUTOR_MEMORY", _memory, default="2g"),
    Variable("RECLAKE_SPARK_SHUFFLE_PARTITIONS", _integer(1), default=8),
    Variable("RECLAKE_SPARK_UI", _boolean, default=False),
]
BY_NAME = {v.name: v for v in VARIABLES}


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
        fields["home"] = str(Path(DEFAULT_HOME).resolve())
    return fields


def setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """A definition-time value (schedule, partitions, Spark session): the parsed variable or its default."""
    variable = BY_NAME[name]
    parsed = _parsed(variable, os.environ if environ is None else environ)
    return variable.default if parsed is None else parsed[1]


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
