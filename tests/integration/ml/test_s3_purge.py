"""Deleting a retired version's artifacts in S3 (moto): ``storage.delete_prefix`` and ``python -m mlkube.purge``."""

from mlkube import purge
from mlkube.ml import storage


def keys(s3, bucket):
    return sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def put(s3, bucket, *names):
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode())


def test_delete_prefix_removes_every_object_under_the_prefix_and_nothing_beside(s3, s3_endpoint):
    s3.create_bucket(Bucket="models")
    put(s3, "models", "p/runs/a/model.joblib", "p/runs/a/card/model_card.json", "p/runs/ab/model.joblib", "p/runs/a")
    options = storage.Options(endpoint=s3_endpoint)
    assert storage.delete_prefix("s3://models/p/runs/a/", options=options) == 2
    # runs/ab shares the name's first letter and runs/a (no slash) is another object: both stay.
    assert keys(s3, "models") == ["p/runs/a", "p/runs/ab/model.joblib"]
    assert storage.delete_prefix("s3://models/p/runs/a", options=options) == 0  # an empty prefix: nothing, no error


def test_the_purge_deletes_a_versions_artifacts_with_the_credentials_of_its_environment(s3, s3_endpoint, tmp_path):
    s3.create_bucket(Bucket="models")
    put(s3, "models", "churn/runs/train-1-0a1b2c3d/model.joblib", "churn/runs/train-1-0a1b2c3d/MANIFEST.json")
    put(s3, "models", "churn/runs/train-2-11111111/model.joblib", "churn/reports/r.html")
    uri, result = "s3://models/churn/runs/train-1-0a1b2c3d/", tmp_path / "answer"
    args = [uri, "--storage", "s3://models/churn", "--endpoint", s3_endpoint, "--result", str(result)]
    assert purge.main(args) == purge.EXIT_OK
    assert result.read_text() == f"deleted 2 objects under {uri}\n"
    assert keys(s3, "models") == ["churn/reports/r.html", "churn/runs/train-2-11111111/model.joblib"]
    assert purge.main(args) == purge.EXIT_OK  # once more: already empty


def test_the_purge_refuses_a_prefix_in_another_bucket_or_outside_runs(s3, s3_endpoint, tmp_path):
    s3.create_bucket(Bucket="models")
    s3.create_bucket(Bucket="other")
    put(s3, "models", "churn/reports/r.html")
    put(s3, "other", "churn/runs/x/model.joblib")
    for uri in ("s3://other/churn/runs/x/", "s3://models/churn/reports/", "s3://models/churn/runs/"):
        code = purge.main([uri, "--storage", "s3://models/churn", "--endpoint", s3_endpoint, "--result", str(tmp_path / "a")])
        assert code == purge.EXIT_REFUSED
    assert keys(s3, "models") == ["churn/reports/r.html"] and keys(s3, "other") == ["churn/runs/x/model.joblib"]
