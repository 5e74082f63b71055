"""One shard of a BatchPrediction end to end on file:// stores (``mlkube.batch.run``): its part,
failures and record, the commit, a retried shard, refusals, and the drift sample."""

from __future__ import annotations

import datetime
import json

import batchmodel
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlkube import batch as entry
from mlkube.api import batch, scoring
from mlkube.ml import traffic

UID = "1a2b3c4d-0000-4000-8000-000000000000"
TOKEN = "1a2b3c4d"


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "v1"
    return path, batchmodel.write_version(path).digest


@pytest.fixture
def inputs(tmp_path):
    """The penguins in two CSV files; one bill length of the second is text that is not a number."""
    frame = batchmodel.penguins().drop(columns="species")
    (tmp_path / "in").mkdir()
    frame.iloc[:200].to_csv(tmp_path / "in/a.csv", index=False)
    second = frame.iloc[200:].astype(object)
    second.loc[second.index[5], "bill_length_mm"] = "long"
    second.to_csv(tmp_path / "in/b.csv", index=False)
    return tmp_path / "in", frame


def request(version, inputs, out, **changes) -> scoring.ScoringRequest:
    body = scoring.ScoringRequest(
        run=scoring.Run(name="nightly", namespace="ml", uid=UID, started_at="2026-12-05T10:00:00Z"),
        model=scoring.Model(version=1, uri=version[0].as_uri()),
        input=batch.Input(uri=f"{inputs[0].as_uri()}/", format="csv"),
        output=batch.Output(uri=f"{out.as_uri()}/", passthrough=["penguin_id"]),
        shards=2,
        max_failed_rows=0.01,
    )
    return body.model_copy(update=changes)


def test_two_shards_score_every_row_once_and_the_second_commits(version, inputs, tmp_path):
    out = tmp_path / "out"
    first = entry.run(request(version, inputs, out), index=0, digest=version[1], chunk_rows=50)
    assert first.totals is None and not (out / scoring.MANIFEST).exists()
    second = entry.run(request(version, inputs, out), index=1, digest=version[1], chunk_rows=50)
    assert (second.totals.rows_scored, second.totals.rows_failed, second.totals.manifest) == (343, 1, scoring.MANIFEST)
    assert sorted([first.rows_scored, second.rows_scored]) == [143, 200] and first.rows_failed + second.rows_failed == 1
    manifest = json.loads((out / scoring.MANIFEST).read_text())
    scored = pd.concat([pd.read_parquet(out / p["name"]) for p in manifest["parts"]])
    ids = sorted(int(i) for i in scored["penguin_id"])  # CSV passthrough columns are text
    assert ids == [i for i in range(len(inputs[1])) if i != 205]
    assert list(scored.columns) == [
        "penguin_id",
        "prediction",
        "probability_Adelie",
        "probability_Chinstrap",
        "probability_Gentoo",
    ]
    (failures,) = manifest["failures"]
    assert pd.read_csv(out / failures).to_dict("records") == [
        {
            "source": "b.csv",
            "row": 5,
            "column": "bill_length_mm",
            "reason": "feature 'bill_length_mm' expects a number, got 'long'",
        }
    ]
    assert second.totals.reasons == [scoring.Reason(reason="feature 'bill_length_mm' expects a number", rows=1)]
    assert set(second.seconds) == {"load", "score", "commit"}


def test_a_retried_shard_replaces_its_part_and_the_run_keeps_one_copy_of_each_row(version, inputs, tmp_path):
    out = tmp_path / "out"
    for index in (0, 1, 1, 0):  # shard 1 killed after its part and tried again; shard 0 too
        entry.run(request(version, inputs, out), index=index, digest=version[1])
    manifest = json.loads((out / scoring.MANIFEST).read_text())
    rows = sum(pq.read_metadata(out / p["name"]).num_rows for p in manifest["parts"])
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert rows == 343 and files == [scoring.MANIFEST, f"part-00000-{TOKEN}.parquet", f"part-00001-{TOKEN}.parquet"]


def test_parquet_input_split_by_row_groups_keeps_its_types(version, tmp_path):
    frame = batchmodel.penguins().drop(columns="species")
    (tmp_path / "in").mkdir()
    frame.to_parquet(tmp_path / "in/all.parquet", row_group_size=100, index=False)
    inputs = (tmp_path / "in", frame)
    body = request(version, inputs, tmp_path / "out", shards=3)
    body = body.model_copy(update={"input": batch.Input(uri=(tmp_path / "in/all.parquet").as_uri())})
    results = [entry.run(body, index=i, digest=version[1]) for i in range(3)]
    assert [r.rows_scored for r in results] == [144, 100, 100] and results[-1].totals.rows_scored == 344
    scored = pd.concat([pd.read_parquet(tmp_path / "out" / r.part) for r in results])
    assert scored["penguin_id"].dtype == "int64" and sorted(scored["penguin_id"]) == list(range(344))


def test_refusals_say_what_to_fix(version, inputs, tmp_path):
    out = tmp_path / "out"
    (out / "theirs.csv").parent.mkdir()
    (out / "theirs.csv").write_text("x\n")
    with pytest.raises(entry.Refused, match="already holds 1 objects this run did not write") as refused:
        entry.run(request(version, inputs, out), index=0, digest=version[1])
    assert refused.value.reason == "OutputExists"
    with pytest.raises(entry.Refused, match="the registry expects sha256:0000") as refused:
        entry.run(request(version, inputs, tmp_path / "o2"), index=0, digest="sha256:" + "0" * 64)
    assert refused.value.reason == "IntegrityError"
    wrong = request(version, inputs, tmp_path / "o3")
    wrong = wrong.model_copy(update={"output": batch.Output(uri=f"{(tmp_path / 'o3').as_uri()}/", passthrough=["customer_id"])})
    with pytest.raises(entry.Refused, match=r"no column 'customer_id' \(a passthrough column of the run\)"):
        entry.run(wrong, index=0, digest=version[1])
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "day.csv.gz").write_bytes(b"island,bill_length_mm\n")  # not gzip
    corrupt = request(version, inputs, tmp_path / "o4").model_copy(
        update={"input": batch.Input(uri=(tmp_path / "gz" / "day.csv.gz").as_uri())}
    )
    with pytest.raises(entry.Refused, match=r"day\.csv\.gz: not readable as csv\.gz") as refused:
        entry.run(corrupt, index=0, digest=version[1])
    assert refused.value.reason == "InvalidInput"


def test_a_drift_sample_of_the_scored_rows_is_a_window_the_drift_check_reads(version, inputs, tmp_path):
    store = tmp_path / "store"
    capture = scoring.Capture(uri=store.as_uri(), namespace="ml", deployment="prod", project="penguins", rows=60)
    body = request(version, inputs, tmp_path / "out", capture=capture)
    for index in (0, 1, 1):  # a retried shard replaces its sample
        entry.run(body, index=index, digest=version[1])
    window = traffic.window(
        store.as_uri(),
        namespace="ml",
        deployment="prod",
        features=batchmodel.FEATURES,
        since=datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC),
        size=1000,
        versions=[1],
    )
    assert len(window) == 60 and set(window["__role__"]) == {"batch"}
    assert set(window["__prediction__"]) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert window["__probabilities__"].map(lambda p: abs(sum(p.values()) - 1) < 1e-9).all()
    assert window["island"].isin(["Biscoe", "Dream", "Torgersen"]).all()
