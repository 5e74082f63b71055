"""Trial pods on the embedded control plane: a whole local cluster whose operator's default study
database is an SQLite file in the state directory (as `mlkube local up` configures it), and a
throwaway PostgreSQL server (Debian's `postgresql` package) for the tuning.storage Secret."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

import localcluster
from localcluster import LocalCluster
from mlkube.local import up


def _with_local_study_storage(local: LocalCluster) -> None:
    """The operator's default study database, as `mlkube local up` configures it."""
    local.operator.env = {**(local.operator.env or {}), "MLKUBE_STUDY_STORAGE": up.study_storage(local.state)}


cluster = localcluster.cluster_fixture(start=localcluster.started, configure=_with_local_study_storage)

namespace = localcluster.namespace_fixture


@pytest.fixture(scope="session")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return localcluster.penguins_csv(tmp_path_factory.mktemp("data"))


def _postgres_bin() -> pathlib.Path | None:
    for root in sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").exists() and (root / "pg_ctl").exists():
            return root
    found = shutil.which("pg_ctl")
    return pathlib.Path(found).parent if found and shutil.which("initdb") else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The URL of a database on a PostgreSQL server started for this session (initdb, pg_ctl) in a
    temporary directory on a free port; PostgreSQL refuses to run as root, so as `nobody` then."""
    binaries = _postgres_bin()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql); .ci/run installs it")
    # Its own directory under the system temp dir: pytest's is private to root.
    base = pathlib.Path(tempfile.mkdtemp(prefix="mlkube-postgres-"))
    data, port = base / "data", localcluster.free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        shutil.chown(base, "nobody")
        prefix = [runuser, "-u", "nobody", "--"]
    (base / "pw").write_text("trials\n")
    if prefix:
        shutil.chown(base / "pw", "nobody")

    def run(*argv: str) -> None:
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "mlkube", "--pwfile", str(base / "pw"), "-A", "scram-sha-256")
        run(
            str(binaries / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off", "start",
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        pytest.skip(f"cannot start a throwaway PostgreSQL server: {(e.stderr or b'').decode()[-500:]}")
    try:
        subprocess.run(
            [*prefix, str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlkube", "studies"],
            check=True, capture_output=True, timeout=60, env={**os.environ, "PGPASSWORD": "trials"},
        )  # fmt: skip
        yield f"postgresql://mlkube:trials@127.0.0.1:{port}/studies"
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(base, ignore_errors=True)
