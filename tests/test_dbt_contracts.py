"""The model contracts of the dbt project (transforms/): a contracted table whose SQL produces, or
whose yml declares, another column type than the contract fails the run with dbt's contract error
naming the column; the unmodified project runs the same models and gets the declared columns.
And the project's dbt unit tests, which pipeline runs leave out (as dbt advises for production
builds), pass here (on Spark: tests/test_spark.py).

The real dbt CLI runs on copies of transforms/ against warehouses in a tmp folder, on a few raw
interactions written here in the ingest stage's raw layout (all text, plus lineage columns). The
data home is passed as the dbt var `reclake_home`; RECLAKE_HOME is removed from dbt's environment.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from orchestration.defs.ingest.schema import RAW_COLUMNS, raw_schema

TRANSFORMS = Path(__file__).resolve().parents[1] / "transforms"
DBT = Path(sys.executable).parent / "dbt"
DATASET = "contract-test"
# Only the models the two contracted tables need: the staging view, the checked rows, the tables.
SELECT = [
    "stg_interactions",
    "int_interactions_checked",
    "fct_interactions",
    "quarantine_interactions",
]
TEXT_COLUMNS = ["user_id", "item_id", "rating", "timestamp", "review_summary", "review_text"]
VARIABLES = {
    "dataset": DATASET,
    "has_ratings": True,
    "rating_min": 1,
    "rating_max": 5,
    "min_event_ts": "1970-01-01 00:00:01",
    "max_event_ts": "2100-01-01 00:00:00",
}


def write_raw_tables(home: Path) -> None:
    """lake/raw/<dataset>/interactions.parquet as the ingest stage writes it: the source's values as
    text, then _source_file, _source_sha256, _source_row, _parse_error and _landed_date."""
    rows = [  # (user_id, item_id, rating, timestamp, parse error)
        ("u1", "i1", "4", "881250949", None),
        ("u1", "i2", "3", "881250950", None),
        ("u2", "i1", "5", "1998-03-01T12:00:00Z", None),
        ("u2", "i3", "nine", "881250951", None),  # rating_not_a_number
        (None, None, None, None, "wrong number of fields"),  # malformed_record
    ]
    columns = {
        name: pa.array([r[i] if i < 4 else None for r in rows], pa.string())
        for i, name in enumerate(TEXT_COLUMNS)
    }
    columns |= {
        "_source_file": pa.array(["interactions.csv"] * len(rows), pa.string()),
        "_source_sha256": pa.array(["0" * 64] * len(rows), pa.string()),
        "_source_row": pa.array(range(2, len(rows) + 2), pa.int64()),
        "_parse_error": pa.array([r[4] for r in rows], pa.string()),
        "_landed_date": pa.nulls(len(rows), pa.string()),  # a snapshot: no landed day
    }
    folder = home / "lake" / "raw" / DATASET
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "interactions.parquet")
    for table in RAW_COLUMNS.keys() - {
        "interactions"
    }:  # items, users, tags: none, with their columns
        empty = raw_schema(table).empty_table()
        if table == "items":  # a daily table: it has the landed day too
            empty = empty.append_column("_landed_date", pa.array([], pa.string()))
        pq.write_table(empty, folder / f"{table}.parquet")


def start_dbt(
    args: list[str], project: Path, workdir: Path, variables: dict, target: str = "duckdb"
) -> subprocess.Popen:
    """The dbt CLI on `project` with `variables` (the data home among them), its target and logs in `workdir`."""
    env = {k: v for k, v in os.environ.items() if k != "RECLAKE_HOME"}
    env |= {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    return subprocess.Popen(
        [
            str(DBT),
            *args,
            "--target",
            target,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(workdir / "target"),
            "--log-path",
            str(workdir / "logs"),
            "--no-use-colors",
            "--vars",
            json.dumps(variables),
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_dbt(
    args: list[str], workdir: Path, variables: dict, target: str = "duckdb"
) -> tuple[int, str]:
    process = start_dbt(args, TRANSFORMS, workdir, variables, target)
    output, _ = process.communicate(timeout=900)
    return process.returncode, output


def unit_test_names() -> list[str]:
    """Every dbt unit test the project's yml files define."""
    return sorted(
        test["name"]
        for path in TRANSFORMS.glob("models/**/*.yml")
        for test in (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    )


def assert_unit_tests_pass(
    home: Path, workdir: Path, variables: dict, target: str = "duckdb"
) -> None:
    """`dbt test --select test_type:unit` on a home whose models exist: every unit test ran and passed."""
    returncode, output = run_dbt(
        ["test", "--select", "test_type:unit"],
        workdir,
        {**variables, "reclake_home": str(home)},
        target,
    )
    names = unit_test_names()
    assert returncode == 0, output[-5000:]
    assert len(names) >= 8 and re.search(rf"PASS={len(names)}\b", output), output[-3000:]


def break_contracts(project: Path) -> None:
    """Two ways a contracted table goes wrong: its SQL changes a column's type, or its yml declares
    a type the SQL does not produce."""
    # fct_interactions.sql: rating comes out as text
    sql = project / "models" / "marts" / "fct_interactions.sql"
    text = sql.read_text()
    assert text.count(" rating {% else %}") == 1
    sql.write_text(text.replace(" rating {% else %}", " cast(rating as string) {% else %}"))
    # quarantine_interactions.yml: source_row declared INTEGER (the SQL makes a BIGINT)
    properties = project / "models" / "marts" / "quarantine_interactions.yml"
    spec = yaml.safe_load(properties.read_text())
    column = next(c for c in spec["models"][0]["columns"] if c["name"] == "source_row")
    assert column["data_type"] == "bigint"
    column["data_type"] = "integer"
    properties.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """`dbt build` of the unmodified project (every model, data test and unit test) and `dbt run` of
    the contracted models on a broken copy, started together (dbt's start-up takes most of the time):
    {"unmodified" | "broken": (exit code, output, data home)}."""
    started = {}
    for case in ("unmodified", "broken"):
        root = tmp_path_factory.mktemp(case)
        home = root / "home"
        write_raw_tables(home)
        project = root / "transforms"
        shutil.copytree(
            TRANSFORMS, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages")
        )
        if case == "broken":
            break_contracts(project)
        command = ["run", "--select", *SELECT] if case == "broken" else ["build"]
        started[case] = (
            start_dbt(command, project, project, {**VARIABLES, "reclake_home": str(home)}),
            home,
        )
    results = {}
    for case, (process, home) in started.items():
        try:
            output, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        results[case] = (process.returncode, output, home)
    return results


def test_unmodified_contracts_build_with_the_declared_columns(runs):
    returncode, output, home = runs["unmodified"]
    assert returncode == 0, output
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        fct = con.execute(
            "select column_name, column_type from (describe main.fct_interactions)"
        ).fetchall()
        quarantine = con.execute(
            "select reason from main.quarantine_interactions order by source_row"
        ).fetchall()
    assert fct == [
        ("user_id", "VARCHAR"),
        ("item_id", "VARCHAR"),
        ("rating", "DOUBLE"),
        ("event_ts", "TIMESTAMP"),
        ("source_file", "VARCHAR"),
        ("source_row", "BIGINT"),
        ("landed_date", "DATE"),
    ]
    assert quarantine == [("rating_not_a_number",), ("malformed_record",)]


def test_every_dbt_unit_test_passes_on_duckdb(runs):
    """The unit tests (one per model that computes something), which pipeline runs leave out."""
    returncode, output, _ = runs["unmodified"]
    passed = set(re.findall(r"PASS \S+::(\S+) ", output))
    assert returncode == 0 and len(unit_test_names()) >= 8
    assert passed == set(unit_test_names()), output[-3000:]


def test_contract_rejects_a_wrong_column_type(runs):
    returncode, output, home = runs["broken"]
    assert returncode != 0, output
    # dbt's contract error, a table row per mismatched column: | column_name | SQL type | contract type | reason |
    assert output.count("This model has an enforced contract that failed.") == 2, output
    assert re.search(
        r"\|\s*rating\s*\|\s*VARCHAR\s*\|\s*DOUBLE\s*\|\s*data type mismatch\s*\|", output
    ), output
    assert re.search(
        r"\|\s*source_row\s*\|\s*BIGINT\s*\|\s*INTEGER\s*\|\s*data type mismatch\s*\|", output
    ), output
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        tables = {
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        }
    assert not {"fct_interactions", "quarantine_interactions"} & tables  # neither table was created
