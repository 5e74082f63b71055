"""Issue 22, label-free performance estimate: with ``analysis.estimatedPerformance`` the router
reads the probabilities the canary serves; when its live traffic shifts to rows it cannot tell
apart (its confidence collapses), the CBPE estimate of its accuracy falls below its test accuracy
minus maxDrop and it is rolled back, with the figures in status, while the stable version keeps
answering every request. No label is ever sent."""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import pytest
from rollout_helpers import FEATURES, NUMERIC, Client, local_dir, penguin_rows, registry, roll_to, serving

from mlkube.ml import artifacts

pytestmark = [pytest.mark.kubectl, pytest.mark.slow]  # a local cluster, real processes

# maxDrop 0.2: the trainer's regularised logistic regression is under-confident (about 0.89 mean
# probability on ordinary rows where its test accuracy is 1.0), which CBPE reads as a drop.
GATE = {"metric": "accuracy", "maxDrop": 0.2, "minSamples": 100}
ANALYSIS = {"interval": "2s", "minRequests": 20, "maxErrorRate": 0.05, "estimatedPerformance": GATE}


def uncertain_rows(uri: str, rows: list[dict], *, count: int = 120) -> list[dict]:
    """Rows halfway between penguins of two species (the measurements blended), kept where the
    version at ``uri`` gives no class more than 0.6: traffic it has not learnt to tell apart."""
    model = artifacts.load(local_dir(uri)).pipeline
    frame = pd.DataFrame(rows)
    species = model.predict(frame[FEATURES])
    rng = np.random.default_rng(0)
    blends = []
    for _ in range(4000):
        i, j = rng.integers(len(rows), size=2)
        if species[i] != species[j]:
            t = rng.uniform(0.3, 0.7)
            blends.append({**rows[i], **{c: t * rows[i][c] + (1 - t) * rows[j][c] for c in NUMERIC}})
    candidates = pd.DataFrame(blends)
    confidence = model.predict_proba(candidates[FEATURES]).max(axis=1)
    kept = [blend for blend, p in zip(blends, confidence) if p < 0.6][:count]
    assert len(kept) == count, f"only {len(kept)} uncertain blends"
    return kept


def test_a_canary_whose_confidence_collapses_is_rolled_back_on_its_estimated_accuracy(cluster, project, deploy, penguins_csv):
    namespace, versions = project["namespace"], project["versions"]
    stable, canary = versions["good"], versions["better"]
    test_accuracy = registry(cluster, namespace, "penguins")["better"]["metrics"]["accuracy"]
    name = deploy(stable, {"type": "Canary", "analysis": ANALYSIS, "canary": {"steps": [{"weight": 50, "pause": "5m"}]}})
    client = Client(serving(cluster, name, namespace), name)
    rows = penguin_rows(penguins_csv)
    shifted = uncertain_rows(registry(cluster, namespace, "penguins")["better"]["artifactUri"], rows)
    roll_to(cluster, name, namespace, canary)

    # Ordinary traffic: the canary is as confident as on its test set.
    answers, status = [], {}
    for batch in range(100):
        answers += client.burst(rows[(batch * 24) % 300 :][:24])
        status = cluster.mdep_status(name, namespace)
        figures = (status.get("analysis") or {}).get("estimatedPerformance") or {}
        if status.get("candidateVersion") == canary and figures.get("samples", 0) >= 40:
            break
    assert figures["estimate"] > test_accuracy - 0.2 and status["phase"] == "Progressing", status

    # The traffic shifts to rows between species: the canary's probabilities flatten out.
    for _ in range(100):
        answers += client.burst(shifted[:48])
        status = cluster.mdep_status(name, namespace)
        if status.get("phase") == "RolledBack":
            break
    after = [answer for _ in range(2) for answer in client.burst(shifted[:24])]
    by_version = collections.Counter(answers + after)
    assert {code for _, code in answers + after} == {200}, by_version  # no request failed, on either version
    assert by_version[(str(canary), 200)] > 0 and {version for version, _ in after} == {str(stable)}, by_version
    assert (status["phase"], status["stableVersion"], status["rolledBackVersion"]) == ("RolledBack", stable, canary)
    figures = status["analysis"]["estimatedPerformance"]
    threshold = round(test_accuracy - 0.2, 6)
    assert (figures["metric"], figures["testValue"], figures["threshold"]) == ("accuracy", test_accuracy, threshold)
    assert figures["samples"] >= 100 and figures["estimate"] < threshold and figures["labeled"] == 0
    (reason,) = status["analysis"]["failedChecks"]
    # The reason shows the estimate to 3 significant digits, the status to 4 decimals: compare the figure, not its text
    shown = reason.removeprefix("estimated accuracy ").split(" ", 1)[0]
    assert abs(float(shown) - figures["estimate"]) <= 0.0006, (shown, figures)
    assert reason.startswith(f"estimated accuracy {shown} < {threshold:.4g} (test accuracy {test_accuracy:.4g}")
    assert f"Version {canary} rolled back" in status["message"] and "estimated accuracy" in status["message"]
    client.close()
