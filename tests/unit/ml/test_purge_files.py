"""Deleting a retired version's artifacts on files: the guard that keeps a deletion inside the
project's runs/, the prefix deletion itself, and ``python -m mlkube.purge``'s answers."""

import re

import pytest

from mlkube import purge
from mlkube.common import uris
from mlkube.ml import errors, storage

RUNS = "s3://bucket/models/runs"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/models/runs/train-1-0a1b2c3d/",
        "s3://bucket/models/runs/train-1-0a1b2c3d",
        "s3://bucket/models/runs/train-1-0a1b2c3d/model.joblib",
    ],
)
def test_a_run_prefix_is_inside_the_projects_runs(uri):
    assert uris.is_inside(uri, RUNS) and uris.is_inside(uri, RUNS + "/")


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/models/runs/",  # runs/ itself: every version of the project
        "s3://bucket/models/runs",
        "s3://bucket/models/",  # the storage root
        "s3://bucket/models/runs2/x/",  # a sibling whose name starts the same
        "s3://bucket/models/runs/../reports/",
        "s3://bucket/models/runs/./x/../../",
        "s3://bucket/models/runs//x/",  # another key than runs/x in S3
        "s3://other/models/runs/x/",  # another bucket
        "file:///bucket/models/runs/x/",  # another scheme
        "s3://bucket/models/runs/x?versionId=1",
        "gs://bucket/models/runs/x/",
        "",
    ],
)
def test_anything_else_is_not(uri):
    assert not uris.is_inside(uri, RUNS)


def test_a_percent_encoded_climb_in_a_file_path_is_not_inside():
    # storage.local_path unquotes file paths: %2e%2e is the directory above.
    assert not uris.is_inside("file:///s/runs/%2e%2e/%2e%2e/etc/", "file:///s/runs")
    assert uris.is_inside("file:///s/runs/a%20b/", "file:///s/runs") and uris.is_inside("/s/runs/x", "file:///s/runs")


def test_a_symbolic_link_out_of_the_runs_directory_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "store" / "runs").mkdir(parents=True)
    (tmp_path / "store" / "runs" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(storage.UnsafeName, match=re.escape(f"which is not inside {tmp_path}/store/runs")):
        storage.require_inside(f"file://{tmp_path}/store/runs/link/", f"file://{tmp_path}/store/runs")


def write(root, *names):
    for name in names:
        storage.write_bytes(storage.join(root, name), name.encode())


def test_delete_prefix_removes_everything_under_it_and_nothing_beside(tmp_path):
    runs = f"file://{tmp_path}/runs"
    write(runs, "a/model.joblib", "a/card/model_card.json", "ab/model.joblib", "b/model.joblib")
    assert storage.delete_prefix(f"{runs}/a/") == 2
    assert storage.list_prefix(runs) == ["ab/model.joblib", "b/model.joblib"]
    assert not (tmp_path / "runs" / "a").exists()


def test_deleting_an_empty_or_missing_prefix_succeeds(tmp_path):
    assert storage.delete_prefix(f"file://{tmp_path}/runs/never-written/") == 0
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    assert storage.delete_prefix(f"file://{tmp_path}/runs/empty") == 0
    assert not (tmp_path / "runs" / "empty").exists()


def test_delete_prefix_refuses_a_file_or_a_linked_directory_and_leaves_the_target(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "file.txt").write_text("x")
    for uri in (f"file://{tmp_path}/link", f"file://{tmp_path}/file.txt"):
        with pytest.raises(errors.StorageError, match="is not a directory; refused"):
            storage.delete_prefix(uri)
    assert (tmp_path / "target" / "keep.txt").exists() and (tmp_path / "file.txt").exists()


def test_a_link_inside_the_prefix_is_removed_not_followed(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("x")
    write(f"file://{tmp_path}/runs", "a/model.joblib")
    (tmp_path / "runs" / "a" / "shared").symlink_to(tmp_path / "elsewhere")
    assert storage.delete_prefix(f"file://{tmp_path}/runs/a") == 2
    assert (tmp_path / "elsewhere" / "keep.txt").exists()


def run(tmp_path, *args):
    result = tmp_path / "termination-log"
    code = purge.main([*args, "--result", str(result)])
    return code, result.read_text().strip()


def test_the_purge_deletes_a_versions_artifacts_and_says_how_many(tmp_path):
    store = f"file://{tmp_path}/store"
    write(
        store, "runs/train-1-0a1b2c3d/model.joblib", "runs/train-1-0a1b2c3d/MANIFEST.json", "runs/train-2-99999999/model.joblib"
    )
    uri = f"{store}/runs/train-1-0a1b2c3d/"
    assert run(tmp_path, uri, "--storage", store) == (0, f"deleted 2 objects under {uri}")
    assert storage.list_prefix(store) == ["runs/train-2-99999999/model.joblib"]
    assert run(tmp_path, uri, "--storage", store) == (0, f"deleted 0 objects under {uri}")  # idempotent


@pytest.mark.parametrize("where", ["runs/", "", "reports/x/", "runs/../reports/x/"])
def test_the_purge_refuses_anything_not_strictly_inside_the_runs_directory_and_deletes_nothing(tmp_path, where):
    store = f"file://{tmp_path}/store"
    write(store, "runs/train-1-0a1b2c3d/model.joblib", "reports/x/r.html")
    code, message = run(tmp_path, f"{store}/{where}", "--storage", store)
    assert code == purge.EXIT_REFUSED
    assert message == f"refused: {store}/{where}: not strictly inside {store}/runs/; refused"
    assert storage.list_prefix(store) == ["reports/x/r.html", "runs/train-1-0a1b2c3d/model.joblib"]


def test_the_purge_refuses_another_projects_storage(tmp_path):
    write(f"file://{tmp_path}/other", "runs/x/model.joblib")
    code, message = run(tmp_path, f"file://{tmp_path}/other/runs/x/", "--storage", f"file://{tmp_path}/store")
    assert code == purge.EXIT_REFUSED and "not strictly inside" in message
    assert storage.list_prefix(f"file://{tmp_path}/other") == ["runs/x/model.joblib"]


def test_a_store_that_fails_exits_1_with_the_reason(tmp_path):
    store = f"file://{tmp_path}/store"
    write(store, "runs/x")  # a file where the version's directory should be
    code, message = run(tmp_path, f"{store}/runs/x/", "--storage", store)
    assert (code, message) == (purge.EXIT_FAILED, f"StorageError: {store}/runs/x/: is not a directory; refused")
