"""BatchPrediction against an S3-compatible store that checks credentials (moto in server mode with
IAM authentication), with the keys from a Secret; and a shard's pod killed mid-way: the Job
replaces it and the run ends with every row once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pandas as pd
import pytest
from batch_helpers import bp, finished, output, replicated, wait_for, write_csv

POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """A moto server that refuses requests without an IAM user's keys; {"endpoint", "key", "secret"}."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The first three requests (the user, its key and its policy) are made before authentication starts.
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for(lambda: _listening(port), 30, "the S3 server")
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        iam.create_user(UserName="tenant")
        key = iam.create_access_key(UserName="tenant")["AccessKey"]
        iam.put_user_policy(UserName="tenant", PolicyName="s3", PolicyDocument=json.dumps(POLICY))
        yield {"endpoint": endpoint, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        server.kill()
        server.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_s3_input_and_output_with_the_keys_of_a_secret(cluster, trained, rows_dir, s3):
    namespace = trained["namespace"]
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=s3["key"],
        aws_secret_access_key=s3["secret"],
    )
    client.create_bucket(Bucket="data")
    rows = replicated(6_000, seed=5)
    for path in write_csv(rows, rows_dir / "s3-in", files=2):
        client.upload_file(str(path), "data", f"score/2026-12-05/{path.name}")
    anonymous = boto3.client(
        "s3", endpoint_url=s3["endpoint"], region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with pytest.raises(anonymous.exceptions.ClientError):
        anonymous.list_objects_v2(Bucket="data")  # the store checks keys: only the Secret's open it
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "s3-creds",
        "-n",
        namespace,
        f"--from-literal=AWS_ACCESS_KEY_ID={s3['key']}",
        f"--from-literal=AWS_SECRET_ACCESS_KEY={s3['secret']}",
    )
    store = {"endpoint": s3["endpoint"], "credentialsSecret": "s3-creds"}
    cluster.apply(
        bp(
            "from-s3",
            input_={"uri": "s3://data/score/2026-12-05/", "format": "csv", **store},
            output={"uri": "s3://data/pred/2026-12-05/", "passthrough": ["penguin_id"], **store},
            parallelism=2,
        ),
        namespace,
    )
    status = finished(cluster, "from-s3", namespace)
    assert (status["phase"], status["rowsScored"], status["outputUri"]) == ("Succeeded", 6_000, "s3://data/pred/2026-12-05/")
    manifest = json.loads(client.get_object(Bucket="data", Key="pred/2026-12-05/_manifest.json")["Body"].read())
    ids = []
    for part in manifest["parts"]:
        client.download_file("data", f"pred/2026-12-05/{part['name']}", str(rows_dir / part["name"]))
        ids += pd.read_parquet(rows_dir / part["name"])["penguin_id"].astype(int).tolist()
    assert sorted(ids) == list(range(6_000))
    job = cluster.get("job", "from-s3-score", namespace)
    assert s3["secret"] not in json.dumps(job), "the keys are never in the Job"
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"}}


def test_a_shard_killed_mid_way_is_replaced_and_every_row_is_written_once(cluster, trained, rows_dir):
    namespace = trained["namespace"]
    rows = replicated(210_000, seed=6)
    directory = rows_dir / "killed-in"
    directory.mkdir()
    rows.iloc[:200_000].to_csv(directory / "big.csv", index=False)  # shard 0 (the heaviest file goes first)
    rows.iloc[200_000:].to_csv(directory / "small.csv", index=False)
    cluster.apply(
        bp(
            "killed",
            input_={"uri": f"{directory.as_uri()}/", "format": "csv"},
            output={"uri": f"{(rows_dir / 'killed-out').as_uri()}/", "passthrough": ["penguin_id"]},
            parallelism=2,
        ),
        namespace,
    )
    core = _core(cluster)

    def scoring_shard_zero() -> str | None:
        for pod in core.list_namespaced_pod(namespace, label_selector="job-name=killed-score").items:
            index = (pod.metadata.annotations or {}).get("batch.kubernetes.io/job-completion-index")
            if index == "0" and pod.status.phase == "Running" and "rowsScored" in _log(core, pod.metadata.name, namespace):
                return pod.metadata.name
        return None

    victim = wait_for(scoring_shard_zero, 120, "shard 0 to report its first rows", interval=0.1)
    processes = wait_for(lambda: cluster.processes_of(victim), 10, "the shard's process")
    assert '"rowsScored": 200000' not in _log(core, victim, namespace), "shard 0 finished before it was killed: give it more rows"
    for process in processes:
        process.kill()

    def progress_while_shard_zero_waits() -> dict | None:
        status = cluster.status("batchprediction", "killed", namespace)
        shards = status.get("shards") or {}
        return (
            status
            if status.get("phase") == "Running" and shards.get("done") == 1 and status.get("rowsScored", 0) >= 10_000
            else None
        )

    running = wait_for(progress_while_shard_zero_waits, 60, "the status to show shard 1 done while shard 0 is retried")
    assert running["shards"]["total"] == 2 and running["modelVersion"] == 1
    status = finished(cluster, "killed", namespace, timeout=240)
    assert status["phase"] == "Succeeded", status
    assert (status["rowsScored"], status["rowsFailed"]) == (210_000, 0)
    job = cluster.get("job", "killed-score", namespace)
    assert job["status"]["failed"] >= 1 and job["status"]["completedIndexes"] == "0-1"
    shard_zero = [
        p
        for p in cluster.items("pods", namespace, "-l", "job-name=killed-score")
        if p["metadata"]["name"].startswith("killed-score-0-")
    ]
    assert len(shard_zero) >= 2, "the killed shard ran again in a new pod"
    manifest, scored = output(rows_dir / "killed-out")
    ids = scored["penguin_id"].astype(int)
    assert len(ids) == 210_000 and ids.is_unique and manifest["rowsScored"] == 210_000
    assert sorted(p.name for p in (rows_dir / "killed-out").glob("part-*")) == sorted(p["name"] for p in manifest["parts"])


def _core(cluster):
    """The kubernetes client's core API on the cluster (kubectl is too slow to poll with)."""
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(config_file=cluster.kubeconfig))


def _log(core, name: str, namespace: str) -> str:
    from kubernetes import client

    try:
        return core.read_namespaced_pod_log(name, namespace)
    except client.ApiException:
        return ""
