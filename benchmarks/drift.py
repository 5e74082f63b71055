"""Data drift of a million-row window: mlkube's DriftDetector against Evidently's DataDriftPreset.

One process, same data, same per-column methods and thresholds: a reference of 100,000 rows and
a current window of 1,000,000 rows with 20 numeric and 5 categorical columns, four of which
shift (a mean, a variance, a skewed tail, category frequencies). mlkube picks each column's
method with ``method="auto"`` (at this size: Wasserstein distance in reference standard
deviations for numeric columns, Jensen-Shannon distance for categorical ones); Evidently gets
exactly those methods and thresholds through ``per_column_method``/``per_column_threshold``.

Measured: wall time of the whole analysis (ours: fit on the reference + score the window + the
status; Evidently: Dataset.from_pandas + Report.run + snapshot.dict()), single-threaded, without
tracing (Evidently once; ours the median of three runs around it); then, in a second run of each, the memory allocated above the already loaded tables,
as the tracemalloc peak (numpy and pandas buffers included; both libraries allocate through it).
Checks that both find the same drifted columns, and ends with one line:
``RESULT speedup_vs_evidently=... memory_ratio=... same_columns=true|false``.

Run: ``.venv/bin/python benchmarks/drift.py`` (needs the ``benchmark`` extra: evidently>=0.7).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlkube.ml import drift, drift_methods

REFERENCE_ROWS = 100_000
CURRENT_ROWS = 1_000_000
SHIFTED = {"num_00", "num_01", "num_02", "cat_0"}
EVIDENTLY_METHOD = {"chi2": "chisquare"}  # Evidently's names where they differ from ours


def make_tables(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and window: mixed numeric shapes, text categories, 1% missing in two columns."""
    rng = np.random.default_rng(seed)

    def table(rows: int, shifted: bool) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for i in range(20):
            shape = i % 4
            if shape == 0:
                values = rng.normal(50, 10, rows)
            elif shape == 1:
                values = rng.normal(0, 1, rows)
            elif shape == 2:
                values = rng.lognormal(3, 0.8, rows)
            else:
                values = rng.poisson(12, rows).astype(float)
            columns[f"num_{i:02d}"] = values
        if shifted:
            columns["num_00"] = rng.normal(55, 10, rows)  # mean +0.5 sd
            columns["num_01"] = rng.normal(0, 1.6, rows)  # variance x2.56
            columns["num_02"] = rng.lognormal(3.3, 0.8, rows)  # heavier tail
        for name in ("num_05", "num_09"):
            columns[name][rng.random(rows) < 0.01] = np.nan
        for j, cardinality in enumerate((4, 6, 10, 3, 20)):
            labels = np.array([f"c{j}_{k}" for k in range(cardinality)])
            weights = np.linspace(2, 1, cardinality)
            if shifted and j == 0:
                weights = weights[::-1] ** 3
            columns[f"cat_{j}"] = labels[rng.choice(cardinality, rows, p=weights / weights.sum())]
        return pd.DataFrame(columns)

    return table(REFERENCE_ROWS, False), table(CURRENT_ROWS, True)


def run_ours(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    detector = drift.DriftDetector(method="auto").fit(reference)
    result = detector.score(current)
    result.to_status(top_k=5)
    return {"features": {f.name: (f.kind, f.method, f.threshold, f.score, f.drifted) for f in result.features}}


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, ours: dict[str, Any]) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    features = ours["features"]
    definition = DataDefinition(
        numerical_columns=[name for name, (kind, *_) in features.items() if kind == "numeric"],
        categorical_columns=[name for name, (kind, *_) in features.items() if kind == "categorical"],
    )
    preset = DataDriftPreset(
        per_column_method={name: EVIDENTLY_METHOD.get(method, method) for name, (_, method, *_) in features.items()},
        per_column_threshold={name: threshold for name, (_, _, threshold, *_) in features.items()},
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    scores = {m["config"]["column"]: m["value"] for m in metrics if m["config"]["type"].endswith("ValueDrift")}
    count = next(m["value"]["count"] for m in metrics if m["config"]["type"].endswith("DriftedColumnsCount"))
    return {"scores": scores, "drifted_count": int(count)}


def timed(run: Callable[[], dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    gc.collect()
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def peak_memory(run: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of ``run`` above what was allocated before it (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - baseline


def main() -> None:
    print(f"generating reference {REFERENCE_ROWS:,} rows and window {CURRENT_ROWS:,} rows x 25 columns ...", flush=True)
    reference, current = make_tables()
    loaded = (reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()) / 2**20
    print(f"loaded tables: {loaded:,.0f} MiB")
    import evidently  # import outside the timings

    first_seconds, ours = timed(lambda: run_ours(reference, current))
    print(f"mlkube:    {first_seconds:8.2f} s", flush=True)
    theirs_seconds, theirs = timed(lambda: run_evidently(reference, current, ours))
    print(f"evidently: {theirs_seconds:8.2f} s  (evidently {evidently.__version__})", flush=True)
    # Ours is short enough for a burst of other work on the machine to distort one run: take the
    # median of three, one before and two after Evidently's single (long, self-averaging) run.
    runs = [first_seconds] + [timed(lambda: run_ours(reference, current))[0] for _ in range(2)]
    ours_seconds = float(np.median(runs))
    print(f"mlkube:    {ours_seconds:8.2f} s  (median of {', '.join(f'{run:.2f}' for run in runs)})", flush=True)
    ours_peak = peak_memory(lambda: run_ours(reference, current))
    theirs_peak = peak_memory(lambda: run_evidently(reference, current, ours))
    print(
        f"memory above the loaded data (tracemalloc peak): mlkube {ours_peak / 2**20:,.1f} MiB, "
        f"evidently {theirs_peak / 2**20:,.1f} MiB"
    )

    print(f"\n{'column':8} {'method':14} {'mlkube':>10} {'evidently':>10}  drifted (mlkube/evidently)")
    ours_drifted, theirs_drifted, worst_difference = set(), set(), 0.0
    for name, (_, method, threshold, score, drifted) in ours["features"].items():
        their_score = theirs["scores"][name]
        their_drifted = drift_methods.is_drifted(method, their_score, threshold)
        ours_drifted |= {name} if drifted else set()
        theirs_drifted |= {name} if their_drifted else set()
        worst_difference = max(worst_difference, abs(score - their_score) / max(abs(their_score), 1e-12))
        print(f"{name:8} {method:14} {score:10.5f} {their_score:10.5f}  {drifted!s:5} / {their_drifted!s:5}")
    same = ours_drifted == theirs_drifted == SHIFTED and theirs["drifted_count"] == len(SHIFTED)
    print(
        f"\ndrifted: mlkube {sorted(ours_drifted)}, evidently {sorted(theirs_drifted)} "
        f"(its own count {theirs['drifted_count']}); shifted by construction {sorted(SHIFTED)}"
    )
    print(f"largest relative score difference: {worst_difference:.2e}")
    speedup, memory_ratio = theirs_seconds / ours_seconds, ours_peak / theirs_peak
    print(f"speedup {speedup:.1f}x (target >= 100x); memory ratio {memory_ratio:.3f} (target <= 0.1)")
    print(f"RESULT speedup_vs_evidently={speedup:.1f} memory_ratio={memory_ratio:.3f} same_columns={str(same).lower()}")


if __name__ == "__main__":
    main()
