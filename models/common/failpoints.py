"""Named crash points for the crash tests: ``RECLAKE_FAILPOINT=<name>`` makes the process SIGKILL
itself when it reaches that point.

A SIGKILL runs no cleanup (no ``finally``, no ``atexit``), just like the OOM killer or a lost
machine, so the tests can check that a write is all-or-nothing at its most fragile moment. Unset
(always, outside those tests) a failpoint costs one environment lookup.

    profile_cache.mid_transaction   rows inserted into the LLM cache, transaction not committed
    registry.version_registered     a model version registered, its MLflow run still RUNNING
    lake.mid_stream_write           the first chunk of a streamed parquet written, no footer yet
"""

import os
import signal

ENV = "RECLAKE_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
