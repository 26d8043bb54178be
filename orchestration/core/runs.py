"""Runs that cannot trample each other, and runs that died without saying so.

One writer at a time: DuckDB takes one writer per file and every reclake run writes the data home,
so the instance queues runs one at a time (dagster.yaml: `concurrency.runs.max_concurrent_runs: 1`;
the daemon in `dg dev` launches the next when one ends) and `reclake demo`, which runs in its
own process outside that queue, waits for a run in progress before it starts.

A run's worker killed with SIGKILL cannot mark its run failed. Runs launched by the daemon are
marked by their code server; a `reclake demo` run (in process) is tagged with its host and pid, and
`mark_orphaned_runs` (the `orphaned_runs` sensor every minute, and each `reclake demo` first) marks a
STARTED run whose process is gone as failed, with an engine event that says why.
"""

from __future__ import annotations

import os
import socket
import time

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

PID_TAG, HOST_TAG = "reclake/worker_pid", "reclake/worker_host"
IN_PROGRESS = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]


def worker_tags() -> dict[str, str]:
    """The tags of a run this process executes itself (in process)."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _orphaned(run) -> bool:
    """A run this host executed in process whose process is gone."""
    pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
    return pid is not None and host == socket.gethostname() and not _alive(int(pid))


def mark_orphaned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed each in-progress run whose in-process worker died; their ids."""
    marked = []
    for run in instance.get_runs(RunsFilter(statuses=IN_PROGRESS)):
        if _orphaned(run):
            instance.report_engine_event(
                f"reclake: the process that ran this run (pid {run.tags[PID_TAG]} on {run.tags[HOST_TAG]}) is gone "
                "(killed?): marked failed. Its outputs were written atomically; re-run it.",
                run,
            )
            instance.report_run_failed(run)
            marked.append(run.run_id)
    return marked


def runs_in_progress(instance: dg.DagsterInstance) -> list:
    """Runs queued or running now (orphans excluded: mark them first)."""
    return [
        r
        for r in instance.get_runs(RunsFilter(statuses=[*IN_PROGRESS, DagsterRunStatus.QUEUED]))
        if not _orphaned(r)
    ]


def wait_for_other_runs(instance: dg.DagsterInstance, log=print, poll_s: float = 5.0) -> None:
    """Block until no other run is queued or in progress on this instance, saying what it waits for."""
    said = None
    while running := runs_in_progress(instance):
        names = ", ".join(f"{r.job_name} {r.run_id[:8]} ({r.status.value})" for r in running)
        if names != said:
            log(f"reclake: waiting for {names} to finish (one writer at a time on this data home)")
            said = names
        time.sleep(poll_s)


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed a run whose in-process worker (reclake demo) was killed and left it STARTED.",
)
def orphaned_runs(context: dg.SensorEvaluationContext):
    marked = mark_orphaned_runs(context.instance)
    return dg.SkipReason(f"marked failed: {', '.join(marked)}" if marked else "no orphaned run")
