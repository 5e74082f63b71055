"""The HTML model card of a trained version, as a person opens it: rendered by headless Chromium.

The trainer entrypoint (`python -m mlkube.trainer`, as the Job runs it) trains a small real model
on scikit-learn's bundled data; Chromium opens the version's `model_card.html` from disk, takes a
screenshot (kept under the test's tmp dir, its path printed) and dumps the DOM. Skipped, with the
reason, where no Chromium binary is installed (`apt-get install chromium`; .ci/run installs it).
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from PIL import Image
from sklearn import datasets

from mlkube.ml import artifacts, charts

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
ACCENT = tuple(int(charts.ACCENT[k : k + 2], 16) for k in (1, 3, 5))  # the fill of bars, cells and points


@pytest.fixture(scope="module")
def chromium() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip(f"no Chromium binary on PATH ({', '.join(BROWSERS)}): apt-get install chromium; .ci/run installs it")
    return found


def train(tmp_path, *, task: str) -> tuple[dict, dict]:
    """Run the trainer entrypoint on breast cancer (classification) or diabetes (regression);
    returns (its result, the card it wrote)."""
    if task == "classification":
        frame = datasets.load_breast_cancer(as_frame=True).frame
        frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
        metric, algorithm, criterion = "roc_auc", "logistic_regression", {"op": ">=", "threshold": 0.9}
        problem = {"positiveClass": "malignant"}
    else:
        frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
        metric, algorithm, criterion, problem = "rmse", "ridge", {"op": "<=", "threshold": 80}, {}
    frame.to_csv(tmp_path / "data.csv", index=False)
    document = {
        "project": {
            "name": "cardpage",
            "namespace": "ml",
            "goal": {"description": "Catch <b>it</b> early", "type": "Process", "kpi": "share caught in stage I"},
            "problem": {"task": task, "target": "target", "primaryMetric": metric, **problem},
            "successCriteria": [{"metric": metric, **criterion}],
        },
        "trainingJob": {"name": "cardpage-1", "namespace": "ml", "uid": "0000-1", "trigger": "manual", "parentVersion": None},
        "data": {"uri": f"file://{tmp_path}/data.csv"},
        "preprocessing": {},
        "algorithms": [{"name": algorithm}],
        "tuning": {"strategy": "random", "maxTrials": 2, "cvFolds": 3},
        "output": {"uri": f"file://{tmp_path}/version/"},
    }
    environment = {**os.environ, "MLKUBE_TRAINING_SPEC": json.dumps(document), "MLKUBE_CONTAINER_ROOT": str(tmp_path / "pod")}
    done = subprocess.run([sys.executable, "-m", "mlkube.trainer"], env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "pod" / "dev" / "termination-log").read_text())
    return result, artifacts.load(tmp_path / "version", expected_digest=result["digest"]).card


def browse(chromium: str, page, *args: str, tmp_path) -> str:
    """Run headless Chromium on `page` (a file) with `args`; returns its stdout."""
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def visible_text(dom: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", dom, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "plots"),
    [
        ("classification", ("Confusion matrix", "Calibration (probability of malignant")),
        ("regression", ("Predicted against actual", "Residuals (actual - predicted)")),
    ],
)
def test_the_card_of_a_trained_version_renders_in_chromium(chromium, tmp_path, record_property, task, plots):
    result, card = train(tmp_path, task=task)
    page = tmp_path / "version" / artifacts.CARD_PAGE
    assert artifacts.CARD_PAGE in artifacts.verify(tmp_path / "version", expected_digest=result["digest"])["files"]

    screenshot = tmp_path / f"model_card_{task}.png"
    browse(chromium, page, f"--screenshot={screenshot}", "--window-size=1200,3000", "--hide-scrollbars", tmp_path=tmp_path)
    record_property("screenshot", str(screenshot))
    print(f"model card screenshot: {screenshot}")
    image = Image.open(screenshot).convert("RGB")
    colours = dict((colour, count) for count, colour in image.getcolors(maxcolors=1 << 24))
    assert image.size == (1200, 3000)
    assert len(colours) > 50, f"{screenshot}: {len(colours)} colours, a blank page"
    assert colours.get(ACCENT, 0) > 5000, f"{screenshot}: the plots drew {colours.get(ACCENT, 0)} pixels"

    dom = browse(chromium, page, "--dump-dom", tmp_path=tmp_path)
    text = visible_text(dom)
    assert dom.count("<svg") >= 3  # the two plots of the task and the feature importance
    for plot in plots:
        assert plot in text
    for split, values in card["metrics"].items():
        for metric, value in values.items():
            assert f"{metric} " in text and f"{value:.4f}" in text, (split, metric, value)
    assert "Goal Catch <b>it</b> early" in text and "KPI share caught in stage I" in text
    assert "kubectl describe mv -n ml cardpage-v<N>" in text
    [source] = card["lineage"]["data"]  # the lineage: the source read, with its digest and rows
    assert f"{source['uri']} {source['digest']} {source['rows']}" in text
