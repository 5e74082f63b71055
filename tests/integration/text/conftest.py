"""Fixtures of the text and gradient boosting acceptance tests: one local cluster per session
(the embedded control plane, its process runtime and the operator), driven with kubectl."""

from __future__ import annotations

import localcluster

cluster = localcluster.cluster_fixture()


namespace = localcluster.namespace_fixture
