"""Security basics: paths from configuration stay inside RECLAKE_HOME, SQL built in Python quotes its
identifiers and literals (a data home with a quote in its path works end to end), and the API key
never appears in what the openai backend reports. (Servers listen on loopback only: checked where
each server is started, via conftest.assert_loopback_only; the planted-key grep over a whole
pipeline's files and logs is in test_crash_rerun.py.)"""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.data import ML100K_DIR, TODAY
from support.pipelines import query

from models.llm.openai_backend import OpenAIBackend
from orchestration.core.paths import Lake, OutsideHomeError
from orchestration.core.resources import LakeResource
from orchestration.core.spark import publish_spark_tables
from orchestration.core.sql import quote_ident, quote_literal
from orchestration.core.warehouse import table_fingerprint


def test_paths_from_config_cannot_escape_the_data_home(tmp_path):
    lake = LakeResource(home=str(tmp_path / "home")).paths
    assert lake.raw_dir("ml-100k") == tmp_path / "home" / "lake" / "raw" / "ml-100k"
    assert lake.recommendations("2026-01-02").is_relative_to(tmp_path / "home")
    with pytest.raises(OutsideHomeError, match="outside RECLAKE_HOME"):
        lake.recommendations("x/../../../../../etc")
    with pytest.raises(OutsideHomeError):
        lake.eval_topk("x/../../../../../elsewhere", "1")
    with pytest.raises(OutsideHomeError):
        lake.raw_table("ml-100k", "../../../../x")
    with pytest.raises(OutsideHomeError):
        lake.path("lake", "/etc/passwd")
    with pytest.raises(OutsideHomeError, match="not a plain name"):
        lake.path("lake", "..")
    assert not (tmp_path / "elsewhere").exists()


def test_sql_quotes_identifiers_and_literals():
    assert quote_ident('we"ird') == '"we""ird"' and quote_literal("it's") == "'it''s'"
    odd = 'o"dd; drop table keep;--'
    with duckdb.connect() as con:
        con.execute("create table keep as select 1 as x")
        con.execute(f"create table main.{quote_ident(odd)} as select 1 as a union all select 2")
        assert table_fingerprint(con, odd)[0] == 2
        assert con.execute("select count(*) from keep").fetchone() == (1,)


def test_spark_tables_publish_from_a_home_with_a_quote_in_its_path(tmp_path):
    home = tmp_path / "it's home"
    folder = Lake(home).spark_tables / "fct_interactions"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"user_id": ["1", "2"]}), folder / "part-0.parquet")
    warehouse = home / "warehouse.duckdb"
    assert publish_spark_tables(Lake(home), ["fct_interactions"]) == ["fct_interactions"]
    assert query(warehouse, "select count(*) from fct_interactions") == [(2,)]


@pytest.mark.integration
def test_ingest_and_dbt_run_in_a_home_whose_path_has_quotes_and_spaces(tmp_path):
    """The data home's path is a SQL string literal in dbt's sources: a quote in it must not break
    (or inject into) the SQL."""
    import dagster as dg

    from orchestration.definitions import WAREHOUSE_JOB, build_defs

    data = tmp_path / "data"
    data.mkdir()
    with (
        open(ML100K_DIR / "ml-100k.inter") as source,
        open(data / "interactions.csv", "w", newline="") as out,
    ):
        rows = list(csv.reader(source, delimiter="\t"))[1:401]
        csv.writer(out).writerows([["user_id", "item_id", "rating", "timestamp"], *rows])
    home = tmp_path / "o'brien's \"home\" dir"
    job = build_defs(LakeResource(home=str(home), dataset=str(data))).resolve_job_def(WAREHOUSE_JOB)
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, partition_key=TODAY
    )
    assert result.success
    assert query(home / "warehouse.duckdb", "select count(*) from fct_interactions") == [(400,)]


def test_an_echoed_api_key_is_redacted_from_backend_errors_fault_injected(monkeypatch):
    """Fault injection: a server that answers 401 echoing the request headers back."""
    key = "sk-reclake-planted-0e1d2c3b4a59"
    monkeypatch.setenv("RECLAKE_LLM_API_KEY", key)

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(401)
            self.end_headers()
            self.wfile.write(
                json.dumps({"error": f"invalid key {self.headers['Authorization']}"}).encode()
            )

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        backend = OpenAIBackend(f"http://127.0.0.1:{server.server_port}/v1", "m", max_retries=0)
        [generation] = backend.generate([[{"role": "user", "content": "hi"}]], 8)
    finally:
        server.shutdown()
        server.server_close()
    assert (
        generation.error.startswith("BackendHTTPError: HTTP 401")
        and "[redacted]" in generation.error
    )
    assert key not in generation.error and key not in repr(backend)
