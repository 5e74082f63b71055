"""One local cluster (real processes, real HTTP) for the closed-loop acceptance test."""

from __future__ import annotations

import localcluster

cluster = localcluster.cluster_fixture()


namespace = localcluster.namespace_fixture
