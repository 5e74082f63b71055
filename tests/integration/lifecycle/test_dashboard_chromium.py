"""Issue 23 acceptance: `mlkube dashboard` in headless Chromium, driven by Selenium, during a rollout.

On the embedded control plane a penguins project trains two versions side by side and they are
approved by hand, one after the other (as in the plugin's test); its ModelDeployment tracks the
champion and rolls version 2 out as a canary holding 25%. The dashboard, started as a user starts it (`mlkube dashboard --port 0`), lists the
project; its page shows both versions and the live split. Recalibrated traffic then makes the
DriftMonitor drift: the page's drift view names the moved features, and its report link opens the
drift check's HTML report. Screenshots of each view are kept under the test's tmp dir (their
paths printed) and must be non-empty PNGs. The server refuses a write and a foreign Host header.

Skipped, saying why, where Chromium or chromedriver is not installed (Debian: `apt-get install
chromium chromium-driver`; .ci/run installs both) or selenium is missing.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from lifecycle_helpers import project, trainingjob, wait_for

from localcluster import LocalCluster, Process
from mlkube.local import scenario

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CANARY = {"type": "Canary", "canary": {"steps": [{"weight": 25, "pause": "1h"}]}, "analysis": {"interval": "2s"}}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Headless Chromium under chromedriver, both from the system (no driver download)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    binary = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no Chromium or chromedriver on PATH: apt-get install chromium chromium-driver; .ci/run installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,2400"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={profile}")
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def start_dashboard(cluster: LocalCluster, namespace: str, workdir: pathlib.Path) -> tuple[Process, str]:
    """`mlkube dashboard --port 0` as a user runs it; returns the process and its URL (its first line)."""
    log = workdir / "dashboard.log"
    argv = [sys.executable, "-m", "mlkube.cli", "dashboard", "--port", "0", "--refresh", "1"]
    process = Process([*argv, "--kubeconfig", cluster.kubeconfig, "-n", namespace], log).start()
    found = wait_for(lambda: re.search(r"mlkube dashboard at (http://\S+/)", log.read_text()), 30, "the dashboard's URL")
    return process, found.group(1)


def shot(browser, path: pathlib.Path) -> pathlib.Path:
    browser.save_screenshot(str(path))
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000, f"{path} is not a PNG of a rendered page"
    print(f"screenshot: {path}")
    return path


def text_of(browser, element_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return re.sub(r"\s+", " ", browser.find_element(By.ID, element_id).text)
    except (NoSuchElementException, StaleElementReferenceException):  # the page is refreshing
        return ""


def registered(cluster: LocalCluster, namespace: str, name: str) -> int:
    """The version the TrainingJob ``name`` registered (waits for it)."""
    status = wait_for(
        lambda: (lambda s: s if s.get("phase") == "Failed" or s.get("modelVersion") else None)(
            cluster.status("trainingjob", name, namespace)
        ),
        240,
        f"TrainingJob {name} to register a version",
        interval=0.5,
    )
    assert status["phase"] == "Succeeded", status
    return status["modelVersion"]


def approve(cluster: LocalCluster, namespace: str, number: int) -> None:
    """Approve version ``number`` as a person would, and wait for it to become champion."""
    patch = '{"spec":{"approval":{"state":"Approved","reason":"checked by hand"}}}'
    cluster.kubectl("patch", "mv", f"penguins-v{number}", "-n", namespace, "--type", "merge", "-p", patch)
    wait_for(
        lambda: cluster.status("mlproject", "penguins", namespace).get("championVersion") == number,
        60,
        f"version {number} to become champion",
        interval=0.5,
    )


def test_the_dashboard_shows_versions_the_live_split_and_drift_in_chromium(cluster, namespace, tmp_path, browser):
    from selenium.webdriver.common.by import By

    table = scenario.penguins()
    table.to_csv(tmp_path / "penguins.csv", index=False)
    cluster.apply(project("penguins", tmp_path / "penguins.csv", tmp_path / "models", promotion={"policy": "manual"}), namespace)
    dashboard, url = start_dashboard(cluster, namespace, tmp_path)
    try:
        for name in ("first", "second"):  # trained side by side; the manual policy holds both until approved
            cluster.apply(trainingjob(name, "penguins"), namespace)
        assert sorted(registered(cluster, namespace, name) for name in ("first", "second")) == [1, 2]
        approve(cluster, namespace, 1)
        cluster.apply(
            {
                "apiVersion": "mlkube.io/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "penguins-prod"},
                "spec": {"projectRef": "penguins", "model": {"track": "champion"}, "strategy": CANARY},
            },
            namespace,
        )
        monitor = {
            "deploymentRef": "penguins-prod",
            "interval": "3s",
            "window": {"size": 200, "duration": "1h"},
            "minSamples": 60,
            "dataDrift": {"method": "auto", "datasetShare": 0.3},
        }
        cluster.apply(
            {"apiVersion": "mlkube.io/v1alpha1", "kind": "DriftMonitor", "metadata": {"name": "penguins-drift"}, "spec": monitor},
            namespace,
        )
        wait_for(lambda: cluster.status("mdep", "penguins-prod", namespace).get("phase") == "Healthy", 120, "version 1 to serve")
        approve(cluster, namespace, 2)
        canary = wait_for(
            lambda: (lambda s: s if s.get("candidateReadyAt") and s.get("currentStep") == 0 else None)(
                cluster.status("mdep", "penguins-prod", namespace)
            ),
            120,
            "version 2 to take its canary share",
            interval=0.5,
        )
        assert canary["trafficSummary"] == "v1=75,v2=25", canary

        # The projects, then the project's page during the canary.
        browser.get(url)
        wait_for(lambda: "penguins" in text_of(browser, f"project-{namespace}-penguins"), 30, "the project in the list")
        shot(browser, tmp_path / "dashboard-projects.png")
        browser.find_element(By.LINK_TEXT, "penguins").click()
        wait_for(lambda: "v1 75% stable, v2 25% canary" in text_of(browser, "deployment-penguins-prod"), 30, "the live split")
        assert text_of(browser, "champion") == "v2"
        versions = text_of(browser, "versions")
        for number in (1, 2):
            f1 = cluster.status("mv", f"penguins-v{number}", namespace)["primaryMetric"]
            assert f1 in text_of(browser, f"version-{number}"), versions
        assert "f1 over versions" in versions
        assert "candidate v2" in text_of(browser, "deployment-penguins-prod")
        shot(browser, tmp_path / "dashboard-canary.png")

        # A drift episode: the caliper recalibrated to centimetres.
        served = cluster.status("mdep", "penguins-prod", namespace)["url"]
        scenario.predict(served, "penguins-prod", scenario.recalibrated(scenario.stations(table, 160, seed=2)))
        drifting = wait_for(
            lambda: (lambda s: s if s.get("phase") == "Drifting" and s.get("reportUri") else None)(
                cluster.status("dmon", "penguins-drift", namespace)
            ),
            90,
            "the monitor to drift",
            interval=0.5,
        )
        moved = sorted(f["name"] for f in drifting["features"] if f["drifted"])
        assert moved, drifting
        wait_for(lambda: "Drifting" in text_of(browser, "monitor-penguins-drift"), 30, "the drift view")
        view = text_of(browser, "monitor-penguins-drift")
        assert all(name in view for name in moved) and "drift severity per feature over analyses" in view, view
        assert "DriftDetected" in text_of(browser, "events")
        shot(browser, tmp_path / "dashboard-drift.png")

        browser.find_element(By.LINK_TEXT, "latest report").click()
        wait_for(lambda: "/reports/latest" in browser.current_url and "bill" in browser.page_source, 30, "the drift report")
        assert browser.page_source.lstrip().lower().startswith(("<!doctype html", "<html"))
        shot(browser, tmp_path / "dashboard-report.png")

        # Read-only and loopback-only.
        refused = urllib.request.Request(url, data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(refused, timeout=10)
        assert error.value.code == 405 and error.value.headers["Allow"] == "GET, HEAD"
        foreign = urllib.request.Request(url, headers={"Host": "attacker.example"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(foreign, timeout=10)
        assert error.value.code == 421
    finally:
        dashboard.stop()
