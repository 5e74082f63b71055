"""The dashboard's paths: what the pages link to is what the server routes, and nothing else is."""

from __future__ import annotations

import pytest

from mlkube.dashboard import links


def test_links_round_trip():
    assert links.route(links.project("ml", "penguins")) == links.Route("project", "ml", "penguins")
    assert links.route(links.card("ml", "penguins-v2")) == links.Route("card", "ml", "penguins-v2")
    assert links.route(links.report("ml", "penguins-drift", None)) == links.Route("report", "ml", "penguins-drift", None)
    at = "2026-12-05T11:59:00Z"
    assert links.report("ml", "d", at) == "/ns/ml/driftmonitors/d/reports/20261205T115900Z"
    assert links.route(links.report("ml", "d", at)) == links.Route("report", "ml", "d", at)
    assert links.route("/") == links.Route("index")


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/ns/ml/projects/../../etc/passwd",
        "/ns/ml/projects/a/b",
        "/ns/ML/projects/penguins",
        "/ns/ml/projects/-x",
        "/ns/ml/driftmonitors/d/reports/../x",
        "/ns/ml/driftmonitors/d/reports/2026-12-05",
        "/ns/ml/modelversions/v/card/",
        "/ns/ml/projects/" + "a" * 700,
        "/static/x.js",
    ],
)
def test_anything_else_is_not_routed(path):
    assert links.route(path) is None
