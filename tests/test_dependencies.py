"""Declared = imported: every third-party module the code imports belongs to a package pyproject.toml
declares (the product's in `dependencies`, tests-only in the `test` extra), and every declared
package is imported somewhere or is named below with the tool that loads it."""

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["orchestration", "models", "feature_repo", "bench"]
# declared but never imported by reclake's own code: what loads each one
LOADED_BY_A_TOOL = {
    "dagster-webserver": "the UI `dg dev` serves (make ui)",
    "dagster-dg-cli": "the `dg` CLI: dg dev (make ui), dg launch, dg check defs",
    "dbt-core": "the `dbt` CLI that dagster-dbt runs",
    "dbt-duckdb": "dbt's duckdb adapter (transforms/profiles.yml)",
    "dbt-spark": "dbt's spark adapter (RECLAKE_ENGINE=spark)",
    "gguf": "transformers' GGUF loader (the embedded LLM)",
    "accelerate": "transformers' model loading",
    "redis": "Feast's Redis online store (feature_store.redis.yaml)",
    "hiredis": "redis' parser",
    "import-linter": "the `lint-imports` CLI (tests/test_architecture.py)",
    "grimp": "import-linter's import graph",
    "ruff": "the `ruff` CLI (lint + format)",
}
LOCAL = {
    "orchestration",
    "models",
    "feature_repo",
    "support",
    "entities",
    "data_sources",
    "feature_views",
    "feature_services",
    "model_quality",
    "llm_runtimes",
    "test_dbt_contracts",
}


def _name(requirement: str) -> str:
    return (
        requirement.split("[")[0]
        .split("=")[0]
        .split("<")[0]
        .split(">")[0]
        .strip()
        .lower()
        .replace("_", "-")
    )


def _imports(folders: list[str]) -> set[str]:
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - LOCAL - {"__future__"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    missing = sorted(m for m in modules if m not in owners)
    if missing:
        pytest.fail(f"imported but not installed: {missing}")
    return {m: {_name(d) for d in owners[m]} for m in modules}


def test_every_import_is_declared_and_every_declaration_is_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    product = {_name(r) for r in project["dependencies"]}
    test_only = {_name(r) for r in project["optional-dependencies"]["test"]}
    product_imports = _distributions(_imports(PRODUCT))
    test_imports = _distributions(_imports(["tests"]))
    undeclared = {m: d for m, d in product_imports.items() if not d & product}
    assert not undeclared, f"the product imports undeclared packages: {undeclared}"
    undeclared = {m: d for m, d in test_imports.items() if not d & (product | test_only)}
    assert not undeclared, f"the tests import undeclared packages: {undeclared}"
    used = set().union(*product_imports.values(), *test_imports.values())
    unused = (product | test_only) - used - set(LOADED_BY_A_TOOL)
    assert not unused, f"declared but never imported (nor loaded by a named tool): {sorted(unused)}"
    # test-only packages stay out of the product
    leaked = {m: d for m, d in product_imports.items() if d & test_only and not d & product}
    assert not leaked, f"the product imports test-only packages: {leaked}"


def test_constraints_pin_every_declared_package_at_its_declared_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = version
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        name, version = _name(requirement), requirement.split("==")[1]
        assert pins.get(name) == version, f"{requirement}: constraints.txt has {pins.get(name)}"
