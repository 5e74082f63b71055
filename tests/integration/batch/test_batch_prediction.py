"""Issue 18 acceptance on the embedded control plane, through kubectl: a CSV prefix of several files
and a Parquet file of several row groups, real penguin rows replicated, scored by BatchPredictions
in shards; every row scored once, the order recoverable by a passthrough id, a sample of rows
equal to the online answer of the same version through its router; rows of the wrong type in the
failures file with the column named, and a run past maxFailedRows failed with the reason.

The 1,000,000-row run is benchmarks/batch.py; these runs are kept to about 100,000 rows each.
"""

from __future__ import annotations

import pandas as pd
import pytest
from batch_helpers import bp, finished, online, output, replicated, serve, write_csv, write_parquet

CSV_ROWS, PARQUET_ROWS, SAMPLE = 90_000, 90_000, 1_000


def test_csv_prefix_and_parquet_row_groups_score_every_row_once_as_the_router_answers(cluster, trained, rows_dir):
    namespace = trained["namespace"]
    csv_rows = replicated(CSV_ROWS, seed=1)
    write_csv(csv_rows, rows_dir / "csv-in", files=3)
    parquet_rows = replicated(PARQUET_ROWS, seed=2)
    write_parquet(parquet_rows, rows_dir / "parquet-in" / "day.parquet", row_group=15_000)
    include = ["prediction", "probabilities", "modelVersion"]
    cluster.apply(
        bp(
            "from-csv",
            input_={"uri": f"{(rows_dir / 'csv-in').as_uri()}/", "format": "csv"},
            output={"uri": f"{(rows_dir / 'csv-out').as_uri()}/", "passthrough": ["penguin_id"], "include": include},
            parallelism=3,
        ),
        namespace,
    )
    cluster.apply(
        bp(
            "from-parquet",
            input_={"uri": (rows_dir / "parquet-in" / "day.parquet").as_uri()},
            output={"uri": f"{(rows_dir / 'parquet-out').as_uri()}/", "format": "csv", "passthrough": ["penguin_id"]},
            parallelism=2,
        ),
        namespace,
    )
    for name, rows, shards in (("from-csv", CSV_ROWS, 3), ("from-parquet", PARQUET_ROWS, 2)):
        status = finished(cluster, name, namespace)
        assert status["phase"] == "Succeeded", status
        assert (status["rowsScored"], status["rowsFailed"], status["modelVersion"]) == (rows, 0, 1)
        assert status["shards"] == {"done": shards, "total": shards}
        assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "True"
        events = cluster.events(name, namespace)
        assert events.count("Started") == 1 and events.count("Succeeded") == 1, events

    table = cluster.kubectl("get", "bp", "from-csv", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PROJECT", "VERSION", "PHASE", "ROWS", "FAILED", "AGE"]
    assert table[1].split()[:6] == ["from-csv", "penguins", "1", "Succeeded", str(CSV_ROWS), "0"]
    job = cluster.get("job", "from-csv-score", namespace)
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["status"]["completedIndexes"]) == ("Indexed", 3, "0-2")

    manifest, scored = output(rows_dir / "csv-out")
    assert manifest["rowsScored"] == CSV_ROWS and len(manifest["parts"]) == 3 and manifest["digest"] == trained["digest"]
    ids = scored["penguin_id"].astype(int)  # CSV has no types: passthrough columns are copied as text
    assert sorted(ids) == list(range(CSV_ROWS)), "every row once: the id recovers the input order"
    for part in manifest["parts"]:
        within = pd.read_parquet(rows_dir / "csv-out" / part["name"])["penguin_id"].astype(int)
        assert within.is_monotonic_increasing and len(within) == part["rows"], "a part keeps the input order"
    assert set(scored["model_version"]) == {1}
    _, from_parquet = output(rows_dir / "parquet-out")
    assert sorted(from_parquet["penguin_id"]) == list(range(PARQUET_ROWS))

    url = serve(cluster, namespace, "penguins-online", 1)
    sample = scored.sample(SAMPLE, random_state=3)
    source = csv_rows.set_index("penguin_id").loc[sample["penguin_id"].astype(int)].reset_index()
    answers = online(url, source)
    for (_, row), answer in zip(sample.iterrows(), answers):
        assert row["prediction"] == answer["prediction"], (row["penguin_id"], answer)
        for name, probability in answer["probabilities"].items():
            assert row[f"probability_{name}"] == pytest.approx(probability, abs=1e-9)


def test_rows_of_the_wrong_type_are_failures_and_past_max_failed_rows_the_run_fails(cluster, trained, rows_dir):
    namespace = trained["namespace"]
    rows = replicated(2_000, seed=4).astype({"bill_length_mm": object})
    broken = rows.index[::200]  # 10 rows
    rows.loc[broken, "bill_length_mm"] = "n/a cm"
    write_csv(rows, rows_dir / "typed-in", files=2)
    for name, limit in (("tolerant", 0.01), ("strict", 0.001)):
        cluster.apply(
            bp(
                name,
                input_={"uri": f"{(rows_dir / 'typed-in').as_uri()}/", "format": "csv"},
                output={"uri": f"{(rows_dir / name).as_uri()}/", "passthrough": ["penguin_id"]},
                parallelism=2,
                maxFailedRows=limit,
            ),
            namespace,
        )
    tolerant = finished(cluster, "tolerant", namespace)
    assert (tolerant["phase"], tolerant["rowsScored"], tolerant["rowsFailed"]) == ("Succeeded", 1_990, 10)
    assert tolerant["failureReasons"] == [{"reason": "feature 'bill_length_mm' expects a number", "rows": 10}]
    manifest, scored = output(rows_dir / "tolerant")
    failures = pd.concat([pd.read_csv(rows_dir / "tolerant" / name) for name in manifest["failures"]])
    assert set(failures["column"]) == {"bill_length_mm"}
    assert set(failures["reason"]) == {"feature 'bill_length_mm' expects a number, got 'n/a cm'"}
    located = {(source, row) for source, row in zip(failures["source"], failures["row"])}
    assert located == {(f"part-{i // 1_000}.csv", i % 1_000) for i in broken}, "each failure names its file and row"
    assert not set(scored["penguin_id"].astype(int)) & set(broken)

    strict = finished(cluster, "strict", namespace)
    assert strict["phase"] == "Failed"
    assert strict["message"].startswith(
        "10 of 2000 rows (0.50%) failed validation, more than spec.maxFailedRows (0.10%); "
        "most common: feature 'bill_length_mm' expects a number (10 rows)"
    ), strict["message"]
    ready = next(c for c in strict["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TooManyFailedRows")
    assert not (rows_dir / "strict" / "_manifest.json").exists(), "a failed run has no manifest"
    assert "Failed" in cluster.events("strict", namespace)
