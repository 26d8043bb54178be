"""`dg dev` from the repo root, with the venv activated, loads the code location ([tool.dg]) and
serves its assets."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.servers import assert_loopback_only, free_port, stop_server

from orchestration.core.settings import REPO_ROOT

ASSETS_QUERY = "{ assetNodes { assetKey { path } groupName } }"
LOCATION_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@pytest.mark.integration
def test_dg_dev_serves_the_code_location(tmp_path):
    port = free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "RECLAKE_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        # what `source .venv/bin/activate` sets: dg checks that the project's venv is the active one
        "VIRTUAL_ENV": sys.prefix,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    Path(env["DAGSTER_HOME"]).mkdir()
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text(
        (REPO_ROOT / "dagster.yaml").read_text()
    )
    server = subprocess.Popen(
        [str(bin_dir / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline, location = time.monotonic() + 180, None
        while time.monotonic() < deadline and location is None:
            if server.poll() is not None:
                pytest.fail(f"dg dev exited: {server.stderr.read().decode()[-2000:]}")
            try:
                entries = graphql(port, LOCATION_QUERY)["data"]["workspaceOrError"][
                    "locationEntries"
                ]
                location = next(e["locationOrLoadError"] for e in entries if e["name"] == "reclake")
            except (OSError, KeyError, TypeError, StopIteration):
                location = None
            if location is None:
                time.sleep(2)
        assert location is not None, "dg dev did not load the code location within 180 s"
        assert location["__typename"] == "RepositoryLocation", location.get("message")
        nodes = graphql(port, ASSETS_QUERY)["data"]["assetNodes"]
        groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
        assert groups["raw_interactions"] == "ingest"
        assert groups["fct_interactions"] == "transform" and groups["splits"] == "transform"
        # the web server, and any TCP port of the processes it starts (daemon, code server): loopback only
        assert ("127.0.0.1", port) in assert_loopback_only(server.pid)
    finally:
        stop_server(server)
        server.stderr.close()
