"""The `reclake` command, one module per job.

entry      the argument parser and the dispatch to a command (`main`, the console script)
demo       `reclake demo`: the whole pipeline in one Dagster run, then what it made
reports    the demo's closing summary: checks, recommenders and gate, judge, simulated users
config     `reclake config`: every RECLAKE_* variable, its kind, value and default
commands   the smaller commands: llm serve, lineage, recommend, data synth, paths
"""

from orchestration.cli.entry import main

__all__ = ["main"]
