"""A batch input split between shards and read in bounded chunks; a run's output prefix, parts and commit."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkube.api import batch, scoring
from mlkube.ml import parts, shards, storage

TOKEN = "1a2b3c4d"


def unit(order: int, weight: int) -> shards.Unit:
    return shards.Unit(f"file:///in/{order}.csv", f"{order}.csv", order, weight)


def test_assign_balances_the_heaviest_first_and_keeps_input_order_within_a_shard():
    units = [unit(0, 10), unit(1, 70), unit(2, 20), unit(3, 30), unit(4, 5)]
    given = shards.assign(units, 2)
    assert [[u.order for u in shard] for shard in given] == [[1], [0, 2, 3, 4]]
    assert shards.assign(units, 2) == given  # every shard computes the same
    assert [len(s) for s in shards.assign(units[:1], 3)] == [1, 0, 0]


def test_a_prefix_lists_the_files_of_its_format_in_name_order_and_skips_markers(tmp_path):
    for name in ("b.csv", "a.csv", "notes.txt", "_SUCCESS", ".a.csv.tmp", "day/c.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n1\n")
    listed = shards.list_inputs(f"file://{tmp_path}/", "csv")
    assert [name for _, name in listed] == ["a.csv", "b.csv", "day/c.csv"]
    assert shards.list_inputs(f"file://{tmp_path}/a.csv", "csv") == [(f"file://{tmp_path}/a.csv", "a.csv")]
    assert [name for _, name in shards.list_inputs(f"file://{tmp_path}", "csv")] == ["a.csv", "b.csv", "day/c.csv"]
    with pytest.raises(shards.InputError, match=r"holds no parquet objects \(names ending in \.parquet\)"):
        shards.list_inputs(f"file://{tmp_path}/", "parquet")


def test_parquet_row_groups_are_units_that_split_one_file(tmp_path):
    table = pa.table({"id": list(range(25)), "x": [float(i) for i in range(25)]})
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=10)
    units = shards.units(shards.list_inputs(f"file://{tmp_path}/", "parquet"), "parquet")
    assert [(u.row_group, u.first_row, u.weight) for u in units] == [(0, 0, 10), (1, 10, 10), (2, 20, 5)]
    given = shards.assign(units, 2)
    read = [
        (first, batch_.column("id").to_pylist())
        for u in given[1]
        for first, batch_ in shards.read(u, "parquet", ["id"], chunk_rows=4)
    ]
    assert read == [(10, [10, 11, 12, 13]), (14, [14, 15, 16, 17]), (18, [18, 19])]


def test_csv_is_read_as_text_in_chunks_with_each_chunks_first_row(tmp_path):
    body = "id,x,y\n" + "".join(f"{i},{i}.5,{'' if i == 3 else 'a'}\n" for i in range(10))
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(body.encode()))
    (unit_,) = shards.units(shards.list_inputs(f"file://{tmp_path}/t.csv.gz", "csv.gz"), "csv.gz")
    assert shards.header(unit_, "csv.gz") == ["id", "x", "y"]
    chunks = list(shards.read(unit_, "csv.gz", ["x", "y"], chunk_rows=4))
    assert [first for first, _ in chunks] == [0, 4, 8]
    assert chunks[0][1].schema == pa.schema([("x", pa.string()), ("y", pa.string())])
    assert chunks[0][1].column("y").to_pylist() == ["a", "a", "a", None]


def test_a_corrupt_input_names_the_file(tmp_path):
    (tmp_path / "t.csv.gz").write_bytes(b"not gzip at all")
    (unit_,) = shards.units([(f"file://{tmp_path}/t.csv.gz", "t.csv.gz")], "csv.gz")
    with pytest.raises(shards.InputError, match=f"{tmp_path}/t.csv.gz: not readable as csv.gz"):
        list(shards.read(unit_, "csv.gz", ["x"], chunk_rows=4))


# -- output ----------------------------------------------------------------------------------


def request(out, *, shards_: int = 2, mode: str = "error", max_failed: float = 0.1) -> scoring.ScoringRequest:
    return scoring.ScoringRequest(
        run=scoring.Run(name="bp", namespace="ml", uid=f"{TOKEN}-0000", started_at="2026-12-05T10:00:00Z"),
        model=scoring.Model(version=3, uri="file:///m/v3/"),
        input=batch.Input(uri="file:///in/", format="csv"),
        output=batch.Output(uri=f"file://{out}/", mode=mode),
        shards=shards_,
        max_failed_rows=max_failed,
    )


def record(out, index: int, scored: int, failed: int = 0, token: str = TOKEN) -> None:
    result = scoring.ShardResult(
        ok=True,
        index=index,
        rows_scored=scored,
        rows_failed=failed,
        reasons=[scoring.Reason(reason="feature 'x' expects a number", rows=failed)] if failed else [],
        part=scoring.part_name(index, token, "parquet"),
    )
    parts.write_record(f"file://{out}/", result, token)


def test_error_mode_refuses_a_prefix_holding_anything_this_run_did_not_write(tmp_path):
    out = tmp_path / "out"
    parts.prepare(f"file://{out}/", TOKEN, mode="error")  # empty: fine
    storage.write_bytes(f"file://{out}/{scoring.part_name(1, TOKEN, 'parquet')}", b"mine")
    parts.prepare(f"file://{out}/", TOKEN, mode="error")  # a sibling shard's part: fine
    storage.write_bytes(f"file://{out}/part-00000-99999999.parquet", b"theirs")
    with pytest.raises(
        parts.OutputExists, match=r"already holds 1 objects this run did not write \(e.g. part-00000-99999999.parquet\)"
    ):
        parts.prepare(f"file://{out}/", TOKEN, mode="error")


def test_a_run_commits_once_every_shard_recorded_and_writes_the_manifest_last(tmp_path):
    out = tmp_path / "out"
    record(out, 0, 90, 2)
    assert parts.commit(request(out), TOKEN, digest="sha256:d") is None
    record(out, 1, 100)
    totals = parts.commit(request(out), TOKEN, digest="sha256:d")
    assert (totals.rows_scored, totals.rows_failed, totals.manifest) == (190, 2, scoring.MANIFEST)
    manifest = json.loads((out / scoring.MANIFEST).read_text())
    assert manifest["parts"] == [
        {"name": "part-00000-1a2b3c4d.parquet", "rows": 90, "shard": 0},
        {"name": "part-00001-1a2b3c4d.parquet", "rows": 100, "shard": 1},
    ]
    assert (manifest["failures"], manifest["digest"], manifest["modelVersion"]) == (
        ["failures/part-00000-1a2b3c4d.csv"],
        "sha256:d",
        3,
    )


def test_too_many_failed_rows_commit_no_manifest(tmp_path):
    out = tmp_path / "out"
    record(out, 0, 50, 50)
    record(out, 1, 100)
    totals = parts.commit(request(out), TOKEN, digest="sha256:d")
    assert (totals.rows_failed, totals.manifest, totals.reasons[0].rows) == (50, None, 50)
    assert not (out / scoring.MANIFEST).exists()


def test_overwrite_removes_the_other_runs_manifest_first_and_its_objects_at_commit(tmp_path):
    out = tmp_path / "out"
    old = "99999999"
    for name in (scoring.part_name(0, old, "parquet"), scoring.record_name(0, old), scoring.failures_name(0, old), "README.txt"):
        storage.write_bytes(f"file://{out}/{name}", b"old")
    storage.write_bytes(f"file://{out}/{scoring.MANIFEST}", json.dumps({"token": old}).encode())
    parts.prepare(f"file://{out}/", TOKEN, mode="overwrite")
    assert not (out / scoring.MANIFEST).exists()
    record(out, 0, 10)
    record(out, 1, 10)
    parts.commit(request(out, mode="overwrite"), TOKEN, digest="sha256:d")
    left = storage.list_prefix(f"file://{out}/")
    assert left == sorted(["README.txt", scoring.MANIFEST, scoring.record_name(0, TOKEN), scoring.record_name(1, TOKEN)])


def test_a_part_is_uploaded_whole_and_chunks_of_another_type_are_conformed(tmp_path):
    writer = parts.PartWriter(tmp_path, "parquet")
    writer.write(pa.table({"id": pa.array([1, 2], pa.int64()), "prediction": ["a", "b"]}))
    writer.write(pa.table({"id": pa.array([3], pa.int32()), "prediction": ["c"]}))
    assert writer.finish(f"file://{tmp_path}/out/part.parquet")
    assert pq.read_table(tmp_path / "out/part.parquet").to_pylist() == [
        {"id": 1, "prediction": "a"},
        {"id": 2, "prediction": "b"},
        {"id": 3, "prediction": "c"},
    ]
    assert not parts.PartWriter(tmp_path / "x", "csv").finish(f"file://{tmp_path}/out/empty.csv")
