"""Runs that cannot trample each other (orchestration/core/runs.py, dagster.yaml): a run left STARTED
by a killed process is marked failed, `reclake demo` waits for a run in progress, and two runs
launched at once against a running `dg dev` finish one after the other."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus
from support.data import TODAY
from support.servers import assert_loopback_only, free_port, stop_server

from models.common.files import sha256_file
from orchestration.core.runs import (
    PID_TAG,
    mark_orphaned_runs,
    runs_in_progress,
    wait_for_other_runs,
)
from orchestration.core.settings import DAGSTER_YAML, REPO_ROOT

SLOW_RUN = textwrap.dedent("""
    import sys, time
    import dagster as dg
    from orchestration.core.runs import worker_tags

    @dg.op
    def slow():
        time.sleep(120)

    @dg.job
    def slow_job():
        slow()

    with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
        slow_job.execute_in_process(instance=instance, tags=worker_tags())
""")


def _instance_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dagster"
    folder.mkdir()
    (folder / "dagster.yaml").write_text(DAGSTER_YAML.read_text())
    return folder


def _started_run(instance, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if runs and runs[0].status == DagsterRunStatus.STARTED:
            return runs[0]
        time.sleep(0.5)
    pytest.fail("the slow run never started")


def test_a_run_left_started_by_a_killed_process_is_marked_failed_fault_injected(tmp_path):
    folder = _instance_dir(tmp_path)
    worker = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(folder)], cwd=REPO_ROOT)
    try:
        with dg.DagsterInstance.from_config(str(folder)) as instance:
            run = _started_run(instance)
            assert run.tags[PID_TAG] == str(worker.pid)
            assert mark_orphaned_runs(instance) == []  # alive: left alone
            assert [r.run_id for r in runs_in_progress(instance)] == [run.run_id]
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            assert (
                instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
            )  # what Dagster alone leaves
            assert mark_orphaned_runs(instance) == [run.run_id]
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
            events = [e.message for e in instance.all_logs(run.run_id)]
            assert any(f"pid {worker.pid}" in m and "is gone" in m for m in events)
            assert runs_in_progress(instance) == [] and mark_orphaned_runs(instance) == []
            wait_for_other_runs(instance, poll_s=0.1)  # returns at once: nothing to wait for
    finally:
        worker.kill()


def test_the_instance_queues_one_run_at_a_time_and_monitors_runs(tmp_path):
    with dg.DagsterInstance.from_config(str(_instance_dir(tmp_path))) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert instance.run_monitoring_enabled


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        headers={"Content-Type": "application/json"},
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status startTime endTime } } }"""


@pytest.mark.integration
def test_two_runs_launched_at_once_finish_one_after_the_other(ml100k_runs, tmp_path):
    """The UI's "Materialize" and the champion sensor both start batch_scoring for today: against
    a running `dg dev`, the second waits for the first and the partition equals one run's."""
    runs, _ = ml100k_runs
    home = runs[-1].home
    partition = home / "lake" / "recommendations" / f"date={TODAY}" / "recommendations.parquet"
    before = sha256_file(partition)
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "RECLAKE_HOME": str(home),
        "DAGSTER_HOME": str(_instance_dir(tmp_path)),
        "VIRTUAL_ENV": sys.prefix,  # the venv activated, as a user runs dg
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    server = subprocess.Popen(
        [str(bin_dir / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        params = {
            "selector": {
                "repositoryLocationName": "reclake",
                "repositoryName": "__repository__",
                "jobName": "batch_scoring",
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": TODAY}]},
        }
        deadline, ids = time.monotonic() + 240, []
        while not ids and time.monotonic() < deadline:  # until the code location has loaded
            try:
                answers = [
                    _graphql(port, LAUNCH, {"params": params})["data"]["launchRun"]
                    for _ in range(2)
                ]
                ids = [a["run"]["runId"] for a in answers if a["__typename"] == "LaunchRunSuccess"]
                assert len(ids) in (0, 2), answers
            except OSError:
                time.sleep(2)
        assert len(ids) == 2, "dg dev did not accept the runs within 240 s"
        assert_loopback_only(server.pid)
        deadline, states = time.monotonic() + 900, []
        while time.monotonic() < deadline:
            states = [_graphql(port, RUN, {"id": run_id})["data"]["runOrError"] for run_id in ids]
            if all(s["status"] in ("SUCCESS", "FAILURE", "CANCELED") for s in states):
                break
            assert (
                sum(s["status"] in ("STARTING", "STARTED") for s in states) <= 1
            )  # never two at once
            time.sleep(2)
        assert [s["status"] for s in states] == ["SUCCESS", "SUCCESS"], states
        first, second = sorted(states, key=lambda s: s["startTime"])
        assert second["startTime"] >= first["endTime"]
    finally:
        stop_server(server)
    assert sha256_file(partition) == before  # the same champion, the same lists: as one run
    recs = pd.read_parquet(partition)
    assert not recs.duplicated(["user_id", "rank"]).any()
