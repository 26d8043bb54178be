"""The code's layers, checked: import contracts (import-linter, [tool.importlinter] in pyproject.toml),
one reader of the RECLAKE_* settings, and the Feast repo's paths agreeing with the core's named paths."""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.core.paths import Lake
from orchestration.core.settings import (
    FEATURE_REPO_DIR,
    REPO_ROOT,
    VARIABLES,
    SettingError,
    default_value,
    resource_fields,
    setting,
)

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")
PACKAGES = ("orchestration", "models", "feature_repo")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the packages under `root`, with the contracts of root/pyproject.toml."""
    env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root), "HOME": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_are_kept():
    done = lint_imports(REPO_ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"{len(VIOLATIONS)} kept, 0 broken" in done.stdout


VIOLATIONS = [  # (module, the import added to it, the contract that must then break)
    (
        "orchestration/defs/evaluation/assets.py",
        "from orchestration.defs.training import assets as _",
        "the stage folders under orchestration/defs are independent of each other BROKEN",
    ),
    (
        "models/registry/tracking.py",
        "import orchestration.core.paths as _",
        "models is plain Python: it never imports orchestration BROKEN",
    ),
    (
        "orchestration/core/warehouse.py",
        "from orchestration.defs.transform import assets as _",
        "layers: the application over the stages over the core BROKEN",
    ),
    (
        "models/recsys/base.py",
        "from models.recsys import catalog as _",
        "no import cycles between sibling modules, at any depth BROKEN",
    ),
    (
        "models/recsys/sasrec.py",
        "from models.evaluation import cases as _",
        "models in layers: common < llm < recsys, text < the rest BROKEN",
    ),
    (
        "feature_repo/entities.py",
        "import models.common.files as _",
        "the Feast repo imports neither orchestration nor models BROKEN",
    ),
]


def test_a_deliberate_violation_breaks_each_contract(tmp_path):
    """The contracts can fail: one import added against each of them, in a copy of the code, breaks
    exactly that many contracts (one lint run for all, as each names its own)."""
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, line, _ in VIOLATIONS:
        with open(tmp_path / module, "a") as handle:
            handle.write(f"\n{line}  # deliberate violation\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    for _, _, broken in VIOLATIONS:
        assert broken in done.stdout, done.stdout[-3000:]
    assert f"0 kept, {len(VIOLATIONS)} broken" in done.stdout


def _sources(pattern: str) -> list[str]:
    """'file:line' of each match of `pattern` in orchestration/ outside core/settings.py."""
    found = []
    for path in sorted((REPO_ROOT / "orchestration").rglob("*.py")):
        if path == REPO_ROOT / "orchestration" / "core" / "settings.py":
            continue
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if re.search(pattern, text):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    return found


def test_settings_are_read_in_one_place_and_never_written_back():
    assert _sources(r"""(environ(\.get)?[\[(]|getenv\()\s*["']RECLAKE_""") == []
    assert (
        _sources(
            r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(setdefault|update|pop)\(|os\.putenv|set_tracking_uri|"
            r"set_registry_uri|set_num_threads"
        )
        == []
    )


def test_every_bad_setting_names_the_variable_the_value_and_what_is_allowed():
    free_text = {
        "RECLAKE_HOME",
        "RECLAKE_LLM_MODEL",
        "RECLAKE_LLM_MODEL_CACHE",
        "RECLAKE_JUDGE2_MODEL",
        "RECLAKE_SPARK_MASTER",
    }  # any value is a name or a path to create
    for variable in VARIABLES:
        if variable.name in free_text:
            continue
        value = "not/a-valid value"
        with pytest.raises(SettingError) as error:
            (
                resource_fields(variable.resource, {variable.name: value})
                if variable.resource
                else setting(variable.name, {variable.name: value})
            )
        message = str(error.value)  # the variable, the value, then what is allowed
        assert message.startswith(f"{variable.name}={value!r}: "), message
        assert re.search(r": (expected|unknown dataset\. Use one of|no such file)", message), (
            message
        )


def test_set_variables_become_env_vars_and_checked_values():
    import dagster as dg

    fields = resource_fields(
        "training",
        {
            "RECLAKE_TRAIN_SEED": "3",
            "RECLAKE_TRAIN_POISONING_DEFENCE": "false",
            "RECLAKE_TRAIN_DEVICE": "CPU",
        },
    )
    assert fields["seed"].name == "RECLAKE_TRAIN_SEED"  # Dagster reads it when a run starts
    assert (
        fields["poisoning_defence"] is False and fields["device"] == "cpu"
    )  # Dagster has no bool EnvVar; normalized
    assert isinstance(resource_fields("lake", {"RECLAKE_ENGINE": "spark"})["engine"], dg.EnvVar)
    assert setting("RECLAKE_NIGHTLY_AT", {"RECLAKE_NIGHTLY_AT": "03:30"}) == (3, 30)
    assert setting("RECLAKE_NIGHTLY_AT", {}) == (2, 0)


def test_default_value_is_the_checked_variable_or_its_built_in_default(monkeypatch):
    monkeypatch.setenv("RECLAKE_JUDGE_USERS", "50")
    monkeypatch.setenv("RECLAKE_TRAIN_DEVICE", "CPU")
    assert default_value("RECLAKE_JUDGE_USERS") == 50  # parsed: the run config gets an int
    assert default_value("RECLAKE_TRAIN_DEVICE") == "cpu"
    monkeypatch.delenv("RECLAKE_JUDGE_USERS")
    monkeypatch.delenv("RECLAKE_TRAIN_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("RECLAKE_HOME", raising=False)
    assert default_value("RECLAKE_JUDGE_USERS") == 200
    assert default_value("RECLAKE_TRAIN_MAX_EPOCHS") is None  # each model's own default
    assert default_value("RECLAKE_HOME") == str(Path(".reclake").resolve())
    monkeypatch.setenv("RECLAKE_SIM_PAGE_SIZE", "40")
    with pytest.raises(SettingError, match="RECLAKE_SIM_PAGE_SIZE='40'"):
        default_value("RECLAKE_SIM_PAGE_SIZE")


def test_each_variable_has_a_kind_and_the_default_of_the_field_it_sets():
    """core/ cannot import the stages' resource classes (the layers above), so the table states each
    default itself; here it must agree with the class, and only per-run knobs are run config."""
    from orchestration.core.resources import LakeResource, LLMResource
    from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
    from orchestration.defs.serving.resources import ServingResource
    from orchestration.defs.training.resources import TrainingResource

    classes = {
        "lake": LakeResource,
        "llm": LLMResource,
        "training": TrainingResource,
        "serving": ServingResource,
        "judge": JudgeResource,
        "simulator": SimulatorResource,
    }
    for v in VARIABLES:
        assert v.kind in ("deployment", "per-run"), v.name
        assert v.run_config is None or v.kind == "per-run", v.name
        if v.resource is None:
            continue
        field = classes[v.resource].model_fields.get(v.field)
        assert field is not None, f"{v.name} sets {v.resource}.{v.field}, which does not exist"
        if not field.is_required():  # lake.home has no default: the table's is used
            assert (field.default, type(field.default)) == (v.default, type(v.default)), v.name
    assert {v.run_config for v in VARIABLES if v.run_config} == {
        *(f"judge_evaluations.{f}" for f in ("n_users", "k", "n_random", "seed")),
        *(f"simulated_feedback.{f}" for f in ("n_users", "max_models", "page_size", "seed")),
        *(f"<name>_model.{f}" for f in ("seed", "max_epochs", "patience")),
        "two_stage_model.two_stage_n",
        "timeline_evaluation.timeline_seeds",
        "cold_item_evaluation.cold_seeds",
        "cold_user_evaluation.cold_user_seeds",
    }


def test_the_feast_repo_reads_the_files_the_core_names(tmp_path, monkeypatch):
    """feature_repo/ imports nothing of reclake (Feast's CLI loads it alone), so it declares its
    sources' paths itself: they must be the ones the core's Lake writes."""
    monkeypatch.setenv("RECLAKE_HOME", str(tmp_path))
    sources = runpy.run_path(str(FEATURE_REPO_DIR / "data_sources.py"))
    lake = Lake(tmp_path)
    assert sources["user_stats_source"].path == str(lake.features("user_stats"))
    assert sources["item_stats_source"].path == str(lake.features("item_stats"))
    assert sources["item_text_embedding_source"].path == str(lake.embeddings("items"))
    assert sources["user_profile_embedding_source"].path == str(lake.embeddings("users"))
    assert sources["user_recommendations_source"].path == str(lake.latest_recommendations)
