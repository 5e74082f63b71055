"""One local cluster (real processes, real HTTP) for the anomaly detection and clustering acceptance tests."""

from __future__ import annotations

import localcluster

cluster = localcluster.cluster_fixture()


namespace = localcluster.namespace_fixture
