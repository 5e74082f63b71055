"""The Widget CRD, installed once per session on the shared server."""

from __future__ import annotations

import pytest
from apiserver_helpers import WIDGET_CRD


@pytest.fixture(scope="session")
def widgets(kubectl):
    kubectl("apply", "-f", str(WIDGET_CRD))
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s")
    return "widgets.example.com"
