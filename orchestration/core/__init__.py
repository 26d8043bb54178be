"""The small core every stage may import and none owns.

settings    the one place that reads RECLAKE_* (checked, passed on as dg.EnvVar / explicit values)
paths       the data home's named paths, each through one guard (Lake)
files       atomic writes (temp file + rename)
warehouse   read-only DuckDB access: query, content fingerprint, the split
resources   the resources several stages share: lake, llm
unchanged   skip a step whose code, config and inputs did not change
lineage     tags that tie outputs to the Dagster run, code and inputs
ui          PNG charts inline in Dagster metadata
datasets, partitions, spark, feast, sql   shared facts about inputs, dates and engines

A stage folder under orchestration/defs/ imports this core and models/, never another stage
(checked by import-linter: pyproject.toml [tool.importlinter]).
"""
