"""Partitioned training data: a prefix of Parquet and CSV(.gz) parts, the column projection, and
the memory budget that refuses data the trainer cannot hold, with the sizes in the message."""

import gzip

import pandas as pd
import pytest
from mlspec import preprocessing, problem

from mlkube.api import datasource
from mlkube.ml import data, errors, partitions


def write_parts(root, mixed):
    """The 200 rows of ``mixed`` as three parts of different formats, plus files that are not parts."""
    (root / "year=2025").mkdir(parents=True)
    mixed.iloc[:80].to_parquet(root / "year=2025" / "part-0.parquet")
    mixed.iloc[80:150].to_csv(root / "year=2025" / "part-1.csv", index=False)
    with gzip.open(root / "part-2.csv.gz", "wt") as f:
        mixed.iloc[150:].to_csv(f, index=False)
    (root / "_SUCCESS").write_text("")
    (root / ".part-3.parquet.tmp").write_text("half written")
    (root / "README.txt").write_text("not data")
    return f"file://{root}/"


def test_a_prefix_reads_every_part_in_name_order_into_one_table(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    snapshot = data.load(datasource.DataSource(uri=uri))

    assert snapshot.rows == 200 and set(snapshot.table.columns) == set(mixed.columns)
    # name order: part-2.csv.gz sorts before year=2025/...
    expected = pd.concat([mixed.iloc[150:], mixed.iloc[:80], mixed.iloc[80:150]], ignore_index=True)
    pd.testing.assert_frame_equal(snapshot.table[list(mixed.columns)], expected, check_dtype=False)
    [lineage] = snapshot.sources
    assert (lineage.uri, lineage.rows) == (uri, 200) and lineage.digest.startswith("sha256:")


def test_the_prefix_lineage_changes_when_any_part_does(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    before = data.load(datasource.DataSource(uri=uri)).sources[0].digest
    assert data.load(datasource.DataSource(uri=uri)).sources[0].digest == before
    changed = mixed.iloc[80:150].copy()
    changed.iloc[0, 0] += 1
    changed.to_csv(tmp_path / "table" / "year=2025" / "part-1.csv", index=False)
    assert data.load(datasource.DataSource(uri=uri)).sources[0].digest != before


def test_parts_with_different_columns_are_refused_naming_the_part_and_columns(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    mixed.drop(columns=["x2"]).iloc[:5].to_csv(tmp_path / "table" / "zz.csv", index=False)
    with pytest.raises(errors.DataError, match=r"must share their columns; zz.csv differs .* in x2"):
        data.load(datasource.DataSource(uri=uri))


def test_an_empty_prefix_says_what_it_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(errors.DataError, match=r"data.uri: .*/empty/ holds no .parquet, .pq, .csv, .csv.gz objects"):
        data.load(datasource.DataSource(uri=f"file://{tmp_path}/empty/"))


def test_with_features_include_only_the_needed_columns_are_read(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    wanted = data.needed_columns(
        problem(features={"include": ["x1"]}), preprocessing(), datasource.DataSource(uri=uri), keep=["flag"]
    )
    snapshot = data.load(datasource.DataSource(uri=uri), columns=wanted)
    assert sorted(snapshot.table.columns) == ["flag", "x1", "y"] and snapshot.rows == 200


def test_the_projection_keeps_the_target_time_column_and_join_keys_and_needs_an_include_list():
    source = datasource.DataSource(uri="file:///t.csv", join=[{"uri": "file:///u.csv", "on": "id"}])
    keep = data.needed_columns(problem(features={"include": ["x1"]}), preprocessing(split={"timeColumn": "when"}), source)
    assert [c for c in ["id", "x1", "x2", "when", "y"] if keep(c)] == ["id", "x1", "when", "y"]
    assert data.needed_columns(problem(features={"exclude": ["x2"]}), preprocessing(), source) is None


def test_data_estimated_past_half_the_memory_limit_is_refused_with_its_size(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    parts = partitions.parts_of(uri)
    estimate = sum(p.in_memory for p in parts)
    assert [p.name for p in parts] == ["part-2.csv.gz", "year=2025/part-0.parquet", "year=2025/part-1.csv"]
    gz = parts[0]
    assert gz.in_memory >= 2 * len(mixed.iloc[150:].to_csv(index=False)), "a gzip part is sized by its text"

    data.load(datasource.DataSource(uri=uri), memory_limit=2 * estimate + 2)  # fits: nothing refused
    with pytest.raises(errors.DataError) as refused:
        data.load(datasource.DataSource(uri=uri), memory_limit=estimate)
    message = str(refused.value)
    assert message.startswith(f"data.uri: {uri} (3 files, ")
    assert "in memory) does not fit the trainer's memory" in message and "raise spec.resources.limits.memory" in message.lower()


def test_one_large_object_is_refused_before_it_is_read(tmp_path, mixed):
    mixed.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(errors.DataError, match=r"data.uri: file://.*/t.csv \(\d+(\.\d)? KiB stored"):
        data.load(datasource.DataSource(uri=f"file://{tmp_path}/t.csv"), memory_limit=1024)


def test_a_parquet_file_is_sized_by_its_rows_and_types_not_its_compressed_bytes(tmp_path):
    frame = pd.DataFrame({"zero": [0] * 200_000, "word": ["abc"] * 200_000})
    frame.to_parquet(tmp_path / "t.parquet")
    part = partitions.measure(f"file://{tmp_path}/t.parquet", "t.parquet")
    assert part.stored < 20_000, "constant columns compress to almost nothing"
    assert part.in_memory >= 200_000 * (8 + partitions.TEXT_OVERHEAD)


def test_format_picks_the_parts_of_one_format_and_reads_an_object_without_extension(tmp_path, mixed):
    uri = write_parts(tmp_path / "table", mixed)
    parquet_only = data.load(datasource.DataSource(uri=uri, format="parquet"))
    assert parquet_only.rows == 80
    assert data.load(datasource.DataSource(uri=uri, format="csv")).rows == 120
    mixed.to_csv(tmp_path / "export", index=False)
    assert data.load(datasource.DataSource(uri=f"file://{tmp_path}/export", format="csv")).rows == 200
