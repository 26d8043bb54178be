"""The RECLAKE_* variables: what each sets, how its text is checked, its default and its kind.

This module only describes them; core/settings.py reads them from the environment (the one reader).

A deployment setting says where and with what reclake runs: where data lives, the engine, the LLM
backends and models, devices, threads, servers, the schedule, what serving publishes. It belongs in
the environment of the process (make, dagster, CI). A per-run knob is a choice of one experiment:
seeds, sample sizes, budgets (epochs, patience, tokens, items) and the model variants a run
compares. Those of the long stages are also their asset's Dagster run config (``run_config``), whose
default is what the variable gives (settings.default_value), so the launchpad can change them per run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from models.llm.embedded import RUNTIMES
from models.llm.ladder import LADDER

DEPLOYMENT = "deployment"
PER_RUN = "per-run"


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

    parse.env_source = "int"  # Dagster reads it itself, as dg.EnvVar.int
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingError("expected a number of seconds > 0, e.g. 60 or 2.5") from None
    if not value > 0 or value == float("inf"):
        raise SettingError("expected a number of seconds > 0, e.g. 60 or 2.5")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingError("expected a share between 0 and 1, e.g. 0.1") from None
    if not 0 <= value <= 1:
        raise SettingError("expected a share between 0 and 1, e.g. 0.1")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("1", "0", "true", "false"):
        raise SettingError("expected one of 1, 0, true, false")
    return lowered in ("1", "true")


# Dagster has no float or bool EnvVar: these reach a resource as the checked value.
_positive_float.env_source = _boolean.env_source = _share.env_source = None

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
    # The built-in value. For a resource field it is that field's default too (the classes keep
    # theirs, as tests build them directly); tests/test_architecture.py checks the two agree.
    default: Any = None
    env_source: str | None = None  # "str" | "int": Dagster reads the variable itself
    kind: str = DEPLOYMENT  # or PER_RUN
    run_config: str | None = None  # "asset.field" of the run config it is the default of


def _variable(kind, name, parse, sets, default=None, run_config=None) -> Variable:
    """One row: `sets` is "resource.field", or None for a value read when the definitions load;
    `run_config` names the asset whose config field of the same name it is the default of."""
    resource, _, field = sets.partition(".") if sets else (None, "", "")
    env_source = getattr(parse, "env_source", "str") if resource else None
    config = f"{run_config}.{field}" if run_config else None
    return Variable(name, parse, resource, field, default, env_source, kind, config)


def deployment(name, parse, sets, default=None) -> Variable:
    return _variable(DEPLOYMENT, name, parse, sets, default)


def per_run(name, parse, sets, default=None, run_config=None) -> Variable:
    return _variable(PER_RUN, name, parse, sets, default, run_config)


_BACKENDS = _choice("embedded", "hf", "openai")
_KINDS = _choice("probe", "zero-shot")
_LADDER = _choice(*EMBEDDED_MODELS)
_RUNTIMES = _choice(*RUNTIMES)
_ITEM_TEXT = _choice(
    "title", "profile", "title+profile", "card", "card+profile", "llm_card", "card+llm_card"
)
# The long stages' assets, whose run config the per-run knobs below default.
TRAIN = "<name>_model"  # every recommender's training asset
TWO_STAGE = "two_stage_model"
TIMELINE = "timeline_evaluation"
COLD_ITEMS = "cold_item_evaluation"
COLD_USERS = "cold_user_evaluation"
JUDGE = "judge_evaluations"
SIMULATE = "simulated_feedback"

VARIABLES = [
    # where state lives and what data it reads
    deployment("RECLAKE_HOME", _text, "lake.home", "./.reclake"),  # the working directory's
    deployment("RECLAKE_DATASET", _dataset, "lake.dataset", "ml-100k"),
    deployment("RECLAKE_DATA_DIR", _existing_path, "lake.data_dir"),
    deployment("RECLAKE_RATING_SCALE", _rating_scale, "lake.rating_scale"),
    deployment("RECLAKE_ENGINE", _choice("duckdb", "spark"), "lake.engine", "duckdb"),
    # the LLM that writes profiles (and judges)
    deployment("RECLAKE_LLM_BACKEND", _BACKENDS, "llm.backend", "embedded"),
    deployment("RECLAKE_LLM_EMBEDDED_MODEL", _LADDER, "llm.embedded_model", "smollm2-135m"),
    deployment("RECLAKE_LLM_RUNTIME", _RUNTIMES, "llm.runtime", "transformers"),
    deployment("RECLAKE_LLM_THREADS", _integer(1), "llm.torch_threads", 2),
    deployment("RECLAKE_LLM_MODEL_PATH", _existing_path, "llm.model_path"),
    deployment("RECLAKE_LLM_BASE_URL", _url, "llm.base_url"),
    deployment("RECLAKE_LLM_MODEL", _text, "llm.model"),
    deployment("RECLAKE_LLM_DEVICE", _device, "llm.device"),
    deployment("RECLAKE_LLM_MODEL_CACHE", _text, "llm.model_cache_dir"),
    deployment("RECLAKE_LLM_BATCH_SIZE", _integer(1), "llm.batch_size", 64),
    per_run("RECLAKE_LLM_MAX_ITEMS", _integer(0), "llm.max_items"),
    per_run("RECLAKE_LLM_MAX_USERS", _integer(0), "llm.max_users"),
    deployment("RECLAKE_LLM_DAILY_BUDGET", _integer(0), "llm.daily_budget", 24),
    per_run("RECLAKE_LLM_ITEM_MAX_NEW_TOKENS", _integer(1), "llm.item_max_new_tokens", 90),
    per_run("RECLAKE_LLM_USER_MAX_NEW_TOKENS", _integer(1), "llm.user_max_new_tokens", 160),
    deployment("RECLAKE_LLM_TIMEOUT_S", _positive_float, "llm.timeout_s", 60.0),
    deployment("RECLAKE_LLM_MAX_RETRIES", _integer(0), "llm.max_retries", 3),
    # training
    deployment("RECLAKE_TRAIN_DEVICE", _device, "training.device", "auto"),
    per_run("RECLAKE_TRAIN_SEED", _integer(0), "training.seed", 0, TRAIN),
    deployment("RECLAKE_TRAIN_THREADS", _integer(1), "training.torch_threads", 2),
    per_run("RECLAKE_TRAIN_MAX_EPOCHS", _integer(1), "training.max_epochs", None, TRAIN),
    per_run("RECLAKE_TRAIN_PATIENCE", _integer(1), "training.patience", None, TRAIN),
    per_run("RECLAKE_TRAIN_LLM_ITEM_TEXT", _ITEM_TEXT, "training.llm_item_text", "title+profile"),
    per_run("RECLAKE_TRAIN_LLM_USER_PROFILE", _boolean, "training.llm_use_user_profile", False),
    per_run("RECLAKE_TRAIN_CONTENT_ITEM_TEXT", _ITEM_TEXT, "training.content_item_text", "card"),
    per_run("RECLAKE_TRAIN_POISONING_DEFENCE", _boolean, "training.poisoning_defence", False),
    per_run(
        "RECLAKE_TRAIN_TWO_STAGE_BASE",
        _choice("popularity", "ease", "sasrec", "llm_sasrec"),
        "training.two_stage_base",
    ),
    per_run("RECLAKE_TRAIN_TWO_STAGE_N", _integer(20), "training.two_stage_n", 50, TWO_STAGE),
    deployment("RECLAKE_PROTOCOLS", _boolean, "training.protocol_evaluations", True),
    per_run("RECLAKE_TIMELINE_SEEDS", _integer(1, 10), "training.timeline_seeds", 1, TIMELINE),
    per_run("RECLAKE_COLD_SEEDS", _integer(1, 10), "training.cold_seeds", 1, COLD_ITEMS),
    per_run("RECLAKE_COLD_USER_SEEDS", _integer(1, 10), "training.cold_user_seeds", 1, COLD_USERS),
    deployment(
        "RECLAKE_RETRAIN_FULL_EVERY_DAYS", _integer(0), "training.retrain_full_every_days", 7
    ),
    deployment("RECLAKE_RETRAIN_MAX_NEW_EVENTS", _share, "training.retrain_max_new_events", 0.10),
    deployment("RECLAKE_RETRAIN_MAX_NEW_ITEMS", _share, "training.retrain_max_new_items", 0.20),
    deployment("RECLAKE_RETRAIN_WARM_EPOCHS", _integer(1), "training.retrain_warm_epochs", 3),
    # nightly serving
    deployment("RECLAKE_SERVING_TOP_K", _integer(1), "serving.top_k", 20),
    deployment("RECLAKE_SERVING_CHUNK_USERS", _integer(1), "serving.chunk_users", 1024),
    deployment("RECLAKE_SERVING_START_DATE", _date, None, "1990-01-01"),
    deployment("RECLAKE_NIGHTLY_AT", _clock, None, (2, 0)),
    deployment("RECLAKE_NIGHTLY_RETRAIN", _boolean, None, False),
    # the judge (its first backend is the llm resource; RECLAKE_JUDGE2_* add a second)
    deployment("RECLAKE_JUDGE_KIND", _KINDS, "judge.kind", "probe"),
    per_run("RECLAKE_JUDGE_USERS", _integer(1), "judge.n_users", 200, JUDGE),
    per_run("RECLAKE_JUDGE_K", _integer(1), "judge.k", 10, JUDGE),
    per_run("RECLAKE_JUDGE_RANDOM_ITEMS", _integer(1), "judge.n_random", 10, JUDGE),
    per_run("RECLAKE_JUDGE_SEED", _integer(0), "judge.seed", 0, JUDGE),
    deployment(
        "RECLAKE_JUDGE_EMBEDDED_MODEL", _LADDER, "judge.embedded_model", "qwen2.5-coder-0.5b"
    ),
    deployment("RECLAKE_JUDGE_RUNTIME", _RUNTIMES, "judge.runtime"),
    deployment("RECLAKE_JUDGE2_BACKEND", _BACKENDS, "judge.second_backend"),
    deployment("RECLAKE_JUDGE2_MODEL_PATH", _existing_path, "judge.second_model_path"),
    deployment("RECLAKE_JUDGE2_BASE_URL", _url, "judge.second_base_url"),
    deployment("RECLAKE_JUDGE2_MODEL", _text, "judge.second_model"),
    # the simulated users (the probe kind reads the judge's tuned probe; zero-shot an LLM of the ladder)
    deployment("RECLAKE_SIM_KIND", _KINDS, "simulator.kind", "probe"),
    per_run("RECLAKE_SIM_USERS", _integer(1), "simulator.n_users", 200, SIMULATE),
    per_run("RECLAKE_SIM_PAGE_SIZE", _integer(2, 20), "simulator.page_size", 10, SIMULATE),
    per_run("RECLAKE_SIM_MODELS", _integer(1), "simulator.max_models", 5, SIMULATE),
    per_run("RECLAKE_SIM_SEED", _integer(0), "simulator.seed", 0, SIMULATE),
    deployment("RECLAKE_SIM_EMBEDDED_MODEL", _LADDER, "simulator.embedded_model"),
    deployment("RECLAKE_SIM_RUNTIME", _RUNTIMES, "simulator.runtime"),
    # Spark (RECLAKE_ENGINE=spark); the dbt profile reads the same variables
    deployment("RECLAKE_SPARK_MASTER", _text, None, "local[*]"),
    deployment("RECLAKE_SPARK_DRIVER_MEMORY", _memory, None, "4g"),
    deployment("RECLAKE_SPARK_EXECUTOR_MEMORY", _memory, None, "2g"),
    deployment("RECLAKE_SPARK_SHUFFLE_PARTITIONS", _integer(1), None, 8),
    deployment("RECLAKE_SPARK_UI", _boolean, None, False),
]
BY_NAME = {v.name: v for v in VARIABLES}
