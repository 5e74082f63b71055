"""Helpers of the closed-loop tests; the cluster is the shared one of tests/integration/localcluster.py."""

from __future__ import annotations

import subprocess
import sys

from localcluster import LocalCluster, wait_for  # noqa: F401  (the tests import them from here)


def mlkube(*args: str) -> subprocess.CompletedProcess:
    """The ``mlkube`` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "mlkube.cli", *args], capture_output=True, text=True, timeout=120)
