"""The UIs as a person sees them: `dg dev` and the MLflow UI started the way a user starts them
(127.0.0.1, the incremental runs' instance and data home), driven by Debian's headless Chromium
through Selenium. Screenshots go to test-artifacts/screenshots/.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make browsers` installs Debian's packages);
without them these tests are skipped, saying so."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support.servers import free_port, stop_server

from models import registry
from orchestration.core.settings import REPO_ROOT

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
BIN = Path(sys.executable).parent
GROUPS = ["ingest", "transform", "features", "llm", "training", "serving", "evaluation"]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
        reason="Debian chromium + chromium-driver are not installed (run `make browsers`)",
    ),
]


def _start(cmd: list[str], env: dict, url: str, log: Path, timeout: float = 240):
    process = subprocess.Popen(
        cmd,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO_ROOT,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_server(process)
                pytest.fail(f"{cmd[0]} did not come up on {url}: {log.read_text()[-2000:]}")
            time.sleep(2)


@pytest.fixture(scope="module")
def servers(incremental_runs, tmp_path_factory):
    """`dg dev` on the runs' instance and `mlflow ui` on their tracking store, both on 127.0.0.1."""
    logs = tmp_path_factory.mktemp("ui-logs")
    home = incremental_runs.edited.home
    env = {
        **os.environ,
        "DAGSTER_HOME": str(incremental_runs.dagster_home),
        "RECLAKE_HOME": str(home),
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "VIRTUAL_ENV": sys.prefix,  # the venv activated, as a user runs dg
    }
    dagster_port, mlflow_port = free_port(), free_port()
    dagster = _start(
        [str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(dagster_port)],
        env,
        f"http://127.0.0.1:{dagster_port}/server_info",
        logs / "dagster.log",
    )
    try:
        mlflow = _start(
            [
                str(BIN / "mlflow"),
                "ui",
                "--backend-store-uri",
                f"sqlite:///{home}/mlflow/mlflow.db",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
            ],
            env,
            f"http://127.0.0.1:{mlflow_port}/health",
            logs / "mlflow.log",
        )
        try:
            yield f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}", home
        finally:
            stop_server(mlflow)
    finally:
        stop_server(dagster)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    # no background networking: this machine's closed network refuses those connections
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _open(driver, url: str, *texts: str, timeout: float = 90) -> str:
    """Load `url` and wait until the page shows every one of `texts`; the body text then."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    deadline = time.monotonic() + timeout
    while True:
        for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
            button.click()  # Dagster's first-visit "join the community" dialog
        body = driver.find_element(By.TAG_NAME, "body").text
        missing = [t for t in texts if t not in body]
        if not missing:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never showed {missing}; it shows: {body[:1500]}")
        time.sleep(1)


def test_dagster_asset_graph_lists_every_group(servers, browser):
    dagster, _, _ = servers
    _open(browser, f"{dagster}/asset-groups", *GROUPS, "Global asset lineage")
    time.sleep(2)  # let the graph finish its layout before the picture
    browser.save_screenshot(str(SCREENSHOTS / "dagster_asset_graph.png"))


def test_dagster_asset_page_shows_its_checks(servers, browser):
    dagster, _, _ = servers
    _open(
        browser,
        f"{dagster}/assets/fct_interactions?view=checks",
        "fct_interactions_expectations",
        "raw_rows_reconcile",
    )
    browser.save_screenshot(str(SCREENSHOTS / "dagster_asset_checks.png"))


def test_dagster_asset_page_shows_its_metadata_plot(servers, browser):
    from selenium.webdriver.common.by import By

    dagster, _, _ = servers
    _open(browser, f"{dagster}/assets/model_comparison", "chart", "sasrec", "Show Markdown")
    # long markdown metadata (the base64 PNG) opens in a dialog from its row
    browser.find_element(
        By.XPATH, "//tr[td[normalize-space()='chart']]//a[contains(., 'Show Markdown')]"
    ).click()
    deadline = time.monotonic() + 60
    while not (
        plots := [
            i
            for i in browser.find_elements(By.TAG_NAME, "img")
            if (i.get_attribute("src") or "").startswith("data:image/png")
        ]
    ):
        assert time.monotonic() < deadline, "the chart dialog shows no PNG"
        time.sleep(1)
    assert (
        browser.execute_script("return arguments[0].naturalWidth;", plots[0]) > 100
    )  # a decoded picture
    browser.save_screenshot(str(SCREENSHOTS / "dagster_metadata_plot.png"))


def test_mlflow_model_version_page_shows_the_champion_alias(servers, browser):
    _, mlflow_ui, home = servers
    champion = registry.connect(home / "mlflow").get_model_version_by_alias(
        registry.REGISTERED_MODEL, "champion"
    )
    body = _open(
        browser,
        f"{mlflow_ui}/#/models/{registry.REGISTERED_MODEL}/versions/{champion.version}",
        f"Version {champion.version}",
        "Aliases",
        "judge_run_id",
        "@ champion",
    )  # aliases load after the page
    # the alias field itself, not the word inside some tag value
    assert re.search(r"Aliases\s*:\s*@ champion", body), body[:1500]
    browser.save_screenshot(str(SCREENSHOTS / "mlflow_champion_version.png"))
