"""data: formats, joins, digests, and the clear errors for unusable tables."""

import hashlib
import io

import pandas as pd
import pytest
from mlspec import preprocessing, problem
from pyarrow import parquet

from mlkube.api import datasource, training
from mlkube.ml import data, errors


def write_csv(path, frame):
    frame.to_csv(path, index=False)
    return f"file://{path}"


def test_csv_and_parquet_load_the_same_table(tmp_path, mixed):
    csv = write_csv(tmp_path / "t.csv", mixed)
    mixed.to_parquet(tmp_path / "t.parquet")
    from_csv = data.load(datasource.DataSource(uri=csv))
    from_parquet = data.load(datasource.DataSource(uri=f"file://{tmp_path}/t.parquet"))

    assert (from_csv.rows, from_csv.columns) == (200, 5)
    pd.testing.assert_frame_equal(from_csv.table, from_parquet.table, check_dtype=False)


def test_parquet_is_recognised_by_content_without_extension(tmp_path, mixed):
    mixed.to_parquet(tmp_path / "table")
    assert data.load(datasource.DataSource(uri=f"file://{tmp_path}/table")).rows == 200


def test_digest_is_stable_and_sensitive_to_values(mixed):
    assert data.digest(mixed) == data.digest(mixed.copy())
    changed = mixed.copy()
    changed.loc[0, "x1"] += 1
    assert data.digest(changed) != data.digest(mixed)
    assert data.digest(mixed).startswith("sha256:")


def test_join_on_a_key_and_concat(tmp_path):
    main = write_csv(tmp_path / "main.csv", pd.DataFrame({"id": [1, 2, 3], "a": [1.0, 2.0, 3.0], "y": [0, 1, 0]}))
    usage = write_csv(tmp_path / "usage.csv", pd.DataFrame({"id": [1, 3], "minutes": [10, 30]}))
    more = write_csv(tmp_path / "more.csv", pd.DataFrame({"id": [4], "a": [4.0], "y": [1]}))

    joined = data.load(datasource.DataSource(uri=main, join=[{"uri": usage, "on": "id", "how": "left"}]))
    assert joined.table["minutes"].tolist()[0::2] == [10, 30] and pd.isna(joined.table["minutes"][1])

    appended = data.load(datasource.DataSource(uri=main, join=[{"uri": more, "how": "concat"}]))
    assert appended.table["id"].tolist() == [1, 2, 3, 4]


def sha256_of(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_csv_source_records_the_digest_of_its_bytes_and_its_rows(tmp_path, mixed):
    path = tmp_path / "t.csv"
    mixed.assign(x1=mixed["x1"].where(mixed.index % 7 != 0)).to_csv(path, index=False)  # rows with a missing value count
    snapshot = data.load(datasource.DataSource(uri=f"file://{path}"))

    lines = path.read_text().splitlines()
    assert snapshot.sources == (training.DataLineage(uri=f"file://{path}", digest=sha256_of(path), rows=len(lines) - 1),)
    assert len(lines) - 1 == 200


def test_a_parquet_source_records_the_digest_of_its_bytes_and_its_rows(tmp_path, mixed):
    path = tmp_path / "t.parquet"
    mixed.to_parquet(path, row_group_size=64)
    snapshot = data.load(datasource.DataSource(uri=f"file://{path}"))

    written = parquet.read_metadata(path)
    assert written.num_row_groups == 4
    assert snapshot.sources == (training.DataLineage(uri=f"file://{path}", digest=sha256_of(path), rows=written.num_rows),)


def test_each_joined_source_records_its_own_digest_and_rows_before_the_join(tmp_path):
    main = tmp_path / "main.csv"
    pd.DataFrame({"id": [1, 2, 3], "a": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(main, index=False)
    usage = tmp_path / "usage.parquet"
    pd.DataFrame({"id": [1, 3], "minutes": [10, 30]}).to_parquet(usage)
    more = tmp_path / "more.csv"
    pd.DataFrame({"id": [4], "a": [4.0], "y": [1], "minutes": [40]}).to_csv(more, index=False)

    snapshot = data.load(
        datasource.DataSource(
            uri=f"file://{main}",
            join=[{"uri": f"file://{usage}", "on": "id", "how": "inner"}, {"uri": f"file://{more}", "how": "concat"}],
        )
    )

    assert snapshot.rows == 3  # two joined rows and one appended
    assert [(s.uri, s.digest, s.rows) for s in snapshot.sources] == [
        (f"file://{main}", sha256_of(main), 3),
        (f"file://{usage}", sha256_of(usage), 2),
        (f"file://{more}", sha256_of(more), 1),
    ]


def test_feedback_rows_keep_the_sources_read_from_storage(tmp_path, mixed):
    path = tmp_path / "t.csv"
    mixed.to_csv(path, index=False)
    snapshot = data.load(datasource.DataSource(uri=f"file://{path}"))
    grown = data.with_feedback(snapshot, mixed.head(5).assign(y="yes"), target="y")
    assert grown.rows == 205 and grown.digest != snapshot.digest and grown.sources == snapshot.sources


def test_join_key_missing_names_the_field(tmp_path):
    main = write_csv(tmp_path / "main.csv", pd.DataFrame({"id": [1], "y": [0]}))
    other = write_csv(tmp_path / "o.csv", pd.DataFrame({"key": [1]}))
    with pytest.raises(errors.DataError, match=r"data.join\[0\].on: column 'id' does not exist in .*o.csv"):
        data.load(datasource.DataSource(uri=main, join=[{"uri": other, "on": "id"}]))


def test_missing_object_says_what_to_fix(tmp_path):
    with pytest.raises(errors.DataError, match=r"nope.csv: no such file; check data.uri"):
        data.load(datasource.DataSource(uri=f"file://{tmp_path}/nope.csv"))


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "empty.csv", "the file is empty"),
        (b"a,b\n", "header.csv", "the table has no rows"),
        (b"PAR1 not really parquet", "bad.parquet", "cannot read it as Parquet"),
        (b"a,b\n1,2\n3,4,5,6\n", "bad.csv", "cannot read it as CSV"),
    ],
)
def test_unreadable_or_empty_tables(tmp_path, content, name, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(errors.DataError, match=f"{name}: {message}"):
        data.load(datasource.DataSource(uri=f"file://{tmp_path}/{name}"))


@pytest.mark.parametrize(
    ("prob", "pre", "message"),
    [
        (problem(target="label"), preprocessing(), "problem.target: column 'label' does not exist"),
        (
            problem(features={"exclude": ["nope"]}),
            preprocessing(),
            "problem.features.exclude: column 'nope' does not exist",
        ),
        (
            problem(features={"include": ["x1", "zz"]}),
            preprocessing(),
            "problem.features.include: column 'zz' does not exist",
        ),
        (problem(), preprocessing(bins=[{"column": "age"}]), "preprocessing.bins: column 'age' does not exist"),
        (
            problem(),
            preprocessing(split={"timeColumn": "ts"}),
            "preprocessing.split.timeColumn: column 'ts' does not exist",
        ),
        (problem(), preprocessing(bins=[{"column": "colour"}]), "column 'colour' must be a numeric feature"),
        (problem(positiveClass="maybe"), preprocessing(), "problem.positiveClass: 'maybe' is not a value of 'y'"),
        (problem(task="regression"), preprocessing(), "target column 'y' is object, not numeric"),
    ],
)
def test_spec_and_table_mismatches_name_the_field(mixed, prob, pre, message):
    with pytest.raises(errors.DataError, match=message):
        data.check(mixed, prob, pre, uri="file:///t.csv")


def test_single_class_target_is_refused(mixed):
    with pytest.raises(errors.DataError, match="target column 'y' has a single class \\('yes'\\)"):
        data.check(mixed.assign(y="yes"), problem(), preprocessing(), uri="file:///t.csv")


def test_feature_columns_exclude_target_and_time_column(mixed):
    table = mixed.assign(ts=range(200), id=range(200))
    assert data.feature_columns(table, problem(features={"exclude": ["id"]}), time_column="ts") == [
        "x1",
        "x2",
        "colour",
        "flag",
    ]


def test_parse_table_reads_bytes(mixed):
    buffer = io.BytesIO()
    mixed.to_parquet(buffer)
    assert len(data.parse_table("s3://b/k.parquet", buffer.getvalue())) == 200


def test_nested_and_date_features_are_refused_with_a_fix(tmp_path, mixed):
    table = mixed.assign(tags=[["a"]] * 200, seen=pd.Timestamp("2026-01-01"))
    table.to_parquet(tmp_path / "t.parquet")
    snapshot = data.load(datasource.DataSource(uri=f"file://{tmp_path}/t.parquet"))
    assert snapshot.digest.startswith("sha256:")
    with pytest.raises(errors.DataError, match="feature column\\(s\\) tags, seen hold dates or nested values"):
        data.check(snapshot.table, problem(), preprocessing(), uri="file:///t.parquet")
