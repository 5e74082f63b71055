"""storage: URI I/O on files (S3 is exercised against a real S3-compatible server in integration)."""

import re

import pytest

from mlkube.ml import errors, storage


def test_file_write_read_list_exists_delete(tmp_path):
    root = f"file://{tmp_path}/store"
    storage.write_bytes(storage.join(root, "a/b.txt"), b"hello")
    storage.write_bytes(storage.join(root, "c.txt"), b"x")

    assert storage.read_bytes(f"{root}/a/b.txt") == b"hello"
    assert storage.list_prefix(root) == ["a/b.txt", "c.txt"]
    assert storage.exists(f"{root}/c.txt")
    storage.delete(f"{root}/c.txt")
    assert not storage.exists(f"{root}/c.txt")
    assert list((tmp_path / "store" / "a").iterdir()) == [tmp_path / "store" / "a" / "b.txt"], "no temp files left"


def test_bare_absolute_path_is_a_file_uri(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"a,b\n")
    assert storage.read_bytes(str(tmp_path / "t.csv")) == b"a,b\n"


def test_missing_file_names_the_uri(tmp_path):
    uri = f"file://{tmp_path}/nope.csv"
    with pytest.raises(errors.ObjectNotFound, match=re.escape("nope.csv: no such file")):
        storage.read_bytes(uri)


@pytest.mark.parametrize("uri", ["ftp://host/x.csv", "gs://bucket/x.csv"])
def test_unsupported_scheme_is_refused(uri):
    with pytest.raises(errors.StorageError, match="unsupported URI scheme"):
        storage.read_bytes(uri)


def test_http_is_read_only():
    with pytest.raises(errors.StorageError, match="read-only"):
        storage.write_bytes("http://example.invalid/x", b"")


def test_s3_uri_needs_bucket_and_key():
    with pytest.raises(errors.StorageError, match="needs a bucket and a key"):
        storage.read_bytes("s3://bucket-only")


@pytest.mark.parametrize("name", ["model.joblib", "card/info.json", "a/./b"])
def test_a_name_under_the_root_is_joined_to_it(tmp_path, name):
    assert storage.within(tmp_path, name).is_relative_to(tmp_path.resolve())


@pytest.mark.parametrize("name", ["../outside", "a/../../outside", "/etc/cron.d/x", "a/../b", "", "."])
def test_a_name_that_climbs_out_of_the_root_is_refused_naming_it(tmp_path, name):
    with pytest.raises(storage.UnsafeName, match=re.escape(f"s3://b/v1/{name}: object name {name!r} escapes")):
        storage.within(tmp_path, name, source=f"s3://b/v1/{name}")
