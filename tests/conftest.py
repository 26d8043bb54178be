"""Shared fixtures: real datasets from ../shared/datasets, a fresh data home per test, the real job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.core.settings import REPO_ROOT, apply_process_switches, parse_dbt_project

SHARED_DATASETS = Path(os.environ.get("RECLAKE_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
ML100K_DIR = SHARED_DATASETS / "ml-100k"
ML_LATEST_SMALL_DIR = SHARED_DATASETS / "ml-latest-small"
AMAZON_FILE = SHARED_DATASETS / "amazon2018-all-beauty-5core" / "All_Beauty_5.json.gz"

RECLAKE = str(Path(sys.executable).parent / "reclake")

# The embedded model is downloaded (pip) and dequantized once per machine, not once per test.
TEST_MODEL_CACHE = Path(os.environ.get("RECLAKE_TEST_MODEL_CACHE", Path(tempfile.gettempdir()) / "reclake-test-model-cache"))

# The tuned judge reads item cards with the ladder's smallest model in tests (the product's default is
# Qwen2.5-Coder-0.5B, a 491 MB download and ~3x the reading time; docs/judge.md).
os.environ.setdefault("RECLAKE_JUDGE_EMBEDDED_MODEL", "smollm2-135m")

apply_process_switches()
parse_dbt_project()  # the manifest must match the SQL before orchestration.definitions is imported

from orchestration.core.partitions import daily_partitions  # noqa: E402

# The serving/judge partition every test uses, fixed once: a run that crosses midnight UTC must not
# write one date's files and look for the next date's.
TODAY = daily_partitions.get_last_partition_key()


def pytest_sessionstart(session):
    if not ML100K_DIR.exists():
        raise pytest.UsageError(f"test data not found: {ML100K_DIR} (set RECLAKE_SHARED_DATASETS)")


@dataclass
class PipelineRun:
    result: object
    seconds: float
    home: Path

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse.duckdb"


def tiny_llm(**overrides):
    """The real embedded LLM on a tiny budget: a few new profiles per run, short outputs."""
    from orchestration.core.resources import LLMResource

    settings = dict(model_cache_dir=str(TEST_MODEL_CACHE), batch_size=4, max_items=3, max_users=3,
                    item_max_new_tokens=32, user_max_new_tokens=48)
    return LLMResource(**{**settings, **overrides})


def tiny_training(**overrides):
    """Real training on a short budget: a few epochs, so SASRec already beats popularity."""
    from orchestration.defs.training.resources import TrainingResource

    return TrainingResource(**{**dict(max_epochs=4, patience=2), **overrides})


def run_pipeline(home: Path, dataset: str = "ml-100k", data_dir: Path | None = None,
                 rating_scale: str | None = None, llm=None, training=None, instance=None) -> PipelineRun:
    """Materialize the real `reclake_pipeline` job into ``home`` and time it: on a fresh ephemeral
    Dagster instance (no history, so nothing is skipped as unchanged) unless one is given. The home
    reaches every step (dbt and Feast included) through the `lake` resource, not the environment."""
    import contextlib

    import dagster as dg

    from orchestration.core.resources import LakeResource
    from orchestration.definitions import PIPELINE_JOB, build_defs

    lake = LakeResource(home=str(home), dataset=dataset, data_dir=str(data_dir) if data_dir else None,
                        rating_scale=rating_scale)
    job = build_defs(lake, llm or tiny_llm(), training or tiny_training()).resolve_job_def(PIPELINE_JOB)
    started = time.monotonic()
    with contextlib.nullcontext(instance) if instance is not None else dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False,
                                        partition_key=TODAY)
    return PipelineRun(result, time.monotonic() - started, home)


def query(warehouse: Path, sql: str, params=None):
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


CONTRACT_TABLES = ["fct_interactions", "quarantine_interactions", "splits", "dim_items", "dim_users",
                   "feat_user_stats", "feat_item_stats"]


@pytest.fixture(scope="session")
def ml100k_runs(tmp_path_factory):
    """The real job on real ML-100K, run twice on the same home (the second run must change nothing).
    Yields both runs and each run's table fingerprints; shared by the ML-100K and Feast tests."""
    import duckdb

    from models.files import sha256_file
    from orchestration.core.paths import Lake
    from orchestration.core.warehouse import table_fingerprint

    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("ml100k") / "home"
    # RECLAKE_HOME points elsewhere while the job runs: every step must take the home from its resource
    decoy = tmp_path_factory.mktemp("decoy-home")
    mp.setenv("RECLAKE_HOME", str(decoy))
    try:
        runs, tables = [], []
        for _ in range(2):
            # 8 epochs, not tiny_training's 4: test_training asserts every model beats popularity by
            # 10%, and at 4 epochs LLM-SASRec's margin depends on which users the defence leaves out
            run = run_pipeline(home, "ml-100k", ML100K_DIR, training=tiny_training(max_epochs=8, patience=3))
            assert run.result.success
            runs.append(run)
            with duckdb.connect(str(run.warehouse), read_only=True) as con:
                fingerprint = {name: table_fingerprint(con, name) for name in CONTRACT_TABLES}
            fingerprint["training_set.parquet"] = sha256_file(Lake(home).features("training_set"))
            tables.append(fingerprint)
        print(f"\nML-100K pipeline run times: first {runs[0].seconds:.1f}s, second {runs[1].seconds:.1f}s")
        assert not list(decoy.iterdir()), f"a step wrote to $RECLAKE_HOME instead of its resource's home: {list(decoy.iterdir())}"
        mp.setenv("RECLAKE_HOME", str(home))  # for the tests that use Feast's CLI and SDK on this home as a user does
        yield runs, tables
    finally:
        mp.undo()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in process ``pid`` and its descendants."""
    import psutil

    root = psutil.Process(pid)
    found = set()
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    return found


def assert_loopback_only(pid: int) -> set[tuple[str, int]]:
    """The server (with its workers and helper processes) listens, and only on loopback."""
    import ipaddress

    def loopback(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback  # a JVM reports ::ffff:127.0.0.1

    addresses = listening_addresses(pid)
    assert addresses, f"process {pid} listens on no TCP port"
    assert all(loopback(ip) for ip, _ in addresses), f"listening beyond loopback: {sorted(addresses)}"
    return addresses


def stop_server(process) -> None:
    """Stop a server started with start_new_session=True, its children included."""
    import os
    import signal
    import subprocess

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def slice_data():
    """The first 200 users of real ML-100K (all their ratings), split by the protocol."""
    import pandas as pd

    from models.recsys.data import SplitData, leave_one_out

    raw = pd.read_csv(ML100K_DIR / "ml-100k.inter", sep="\t", dtype=str)
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    raw = raw[raw["user_id"].astype(int) <= 200]
    raw["event_ts"] = pd.to_datetime(raw["timestamp"].astype(int), unit="s")
    return SplitData.from_splits(leave_one_out(raw))


def materializations(run) -> dict:
    """Asset key -> metadata of each materialization in a pipeline run."""
    return {e.materialization.asset_key.to_user_string(): e.materialization.metadata
            for e in run.result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def mlflow_client(ml100k_runs):
    """An MLflow client on the ML-100K runs' data home."""
    from models import registry

    runs, _ = ml100k_runs
    return registry.connect(runs[-1].home / "mlflow")


@pytest.fixture(scope="session")
def embedded():
    """The real embedded LLM (SmolLM2-135M), loaded once per test session."""
    from models.llm.embedded import load_embedded

    return load_embedded(TEST_MODEL_CACHE, batch_size=4)


@pytest.fixture(scope="session")
def llm_server():
    """`reclake llm serve` (embedded model) as a real process on 127.0.0.1; (base_url, model)."""
    port = free_port()
    env = {**os.environ, "RECLAKE_LLM_MODEL_CACHE": str(TEST_MODEL_CACHE)}
    server = subprocess.Popen([RECLAKE, "llm", "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(base_url + "/models", timeout=5) as response:
                    model = json.load(response)["data"][0]["id"]
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"reclake llm serve did not start: {server.stdout.read().decode()[-2000:]}")
                time.sleep(1)
        assert_loopback_only(server.pid)  # started without --host: the default is loopback
        yield base_url, model
    finally:
        stop_server(server)


SLICE_USERS = 300


def write_ml100k_slice(folder: Path, max_user: int) -> Path:
    """ML-100K's users 1..max_user (all their ratings), with every item and user, in RecBole format."""
    import shutil

    folder.mkdir(parents=True)
    for name in ("ml-100k.item", "ml-100k.user"):
        shutil.copy(ML100K_DIR / name, folder / name)
    lines = (ML100K_DIR / "ml-100k.inter").read_text().splitlines(keepends=True)
    (folder / "ml-100k.inter").write_text(lines[0] + "".join(l for l in lines[1:] if int(l.split("\t")[0]) <= max_user))
    return folder


@dataclass
class IncrementalRuns:
    cold: PipelineRun
    warm: PipelineRun  # the unchanged re-run
    edited: PipelineRun  # after one item title was edited
    data: Path  # the editable copy of the dataset
    dagster_home: Path  # the persistent instance all three ran on


@pytest.fixture(scope="session")
def incremental_runs(tmp_path_factory):
    """ML-100K's first 300 users as an editable copy: a cold run, an unchanged re-run, and a run
    after one item title was edited; all on one persistent instance."""
    import dagster as dg

    root = tmp_path_factory.mktemp("incremental")
    data = write_ml100k_slice(root / "ml-100k", SLICE_USERS)
    home = root / "home"
    (root / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(root / "dagster")) as instance:
        cold = run_pipeline(home, "ml-100k", data, instance=instance)
        warm = run_pipeline(home, "ml-100k", data, instance=instance)
        items = (data / "ml-100k.item").read_text().replace("1\tToy Story\t1995", "1\tToy Story (restored)\t1995", 1)
        (data / "ml-100k.item").write_text(items)
        edited = run_pipeline(home, "ml-100k", data, instance=instance)
    print(f"\n{SLICE_USERS}-user slice: cold run {cold.seconds:.1f}s, unchanged re-run {warm.seconds:.1f}s, "
          f"after one edited title {edited.seconds:.1f}s")
    return IncrementalRuns(cold, warm, edited, data, root / "dagster")
