"""The dashboard's pages as a person reads them: versions and their metric, the live split and its
history, drift per feature over analyses with report links, running trainings, Events; and no
markup from the cluster's text gets through unescaped."""

from __future__ import annotations

import html.parser
import re

from dashboard_cases import HOSTILE, NOW, NS, filled

from mlkube.dashboard import pages, store
from mlkube.ml import charts


class Text(html.parser.HTMLParser):
    """The visible text under each element id, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.by_id: dict[str, str] = {}
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.tags.add(tag)
        if tag == "a":
            self.links.append(found.get("href", ""))
        if tag not in ("meta", "br", "rect", "circle", "polyline", "line"):
            self.open.append((tag, found.get("id")))
            if found.get("id"):
                self.by_id[found["id"]] = ""

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.handle_data(" ")
        if any(open_tag == tag for open_tag, _ in self.open):
            while self.open.pop()[0] != tag:
                pass

    def handle_data(self, data):
        for _, ident in self.open:
            if ident:
                self.by_id[ident] += data


def read(page: str) -> Text:
    text = Text()
    text.feed(page)
    return text


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_project_page_shows_versions_split_drift_trainings_and_events():
    page = pages.project(filled(), NS, "penguins", now=NOW, refresh=5)
    seen = read(page)
    assert squash(seen.by_id["champion"]) == "v1"
    assert "f1=0.9851" in seen.by_id["version-2"] and "f1=0.9814" in seen.by_id["version-1"]
    assert "f1 over versions" in seen.by_id["versions"]
    deployment = squash(seen.by_id["deployment-penguins-prod"])
    assert "traffic v1 50% stable, v2 50% canary" in deployment
    assert "Canary · Progressing · step 1 · candidate v2 · verdict Passing (60 requests)" in deployment
    assert "v1 75% stable, v2 25% canary" in deployment  # the history keeps the earlier split
    drift = squash(seen.by_id["monitor-penguins-drift"])
    assert "Drifting · version v1 · drift share 0.50 · 300 samples" in drift
    assert "drifted features: bill_length_mm" in drift
    assert "/ns/ml/driftmonitors/penguins-drift/reports/20261205T115900Z" in seen.links
    assert "/ns/ml/driftmonitors/penguins-drift/reports/latest" in seen.links
    assert "/ns/ml/modelversions/penguins-v2/card" in seen.links
    assert "retrain-1 Running tuning 2/6 0.97 120s" in squash(seen.by_id["trainings"])  # 60 s for 2 trials, 4 to go
    events = squash(seen.by_id["events"])
    assert events.index("DriftDetected") < events.index("CanaryStarted") and "someone else's" not in events
    assert "svg" in seen.tags and "script" not in seen.tags


def test_text_from_the_cluster_is_escaped_everywhere():
    data = filled()
    for page in (
        pages.project(data, NS, "penguins", now=NOW, refresh=5),
        pages.index(data, namespaces="ns ml", now=NOW, refresh=5),
    ):
        assert HOSTILE not in page and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages.project(data, NS, "penguins", now=NOW, refresh=5)


def test_the_index_lists_projects_with_their_live_split():
    seen = read(pages.index(filled(), namespaces="namespace ml", now=NOW, refresh=5))
    row = squash(seen.by_id["project-ml-penguins"])
    assert row == "ml penguins Ready v1 2 penguins-prod: v1 50% stable, v2 50% canary"
    assert "/ns/ml/projects/penguins" in seen.links


def test_an_unknown_project_has_no_page_and_an_empty_store_says_it_is_reading():
    assert pages.project(filled(), NS, "nope", now=NOW, refresh=5) is None
    assert "Reading the cluster" in pages.index(store.Store(), namespaces="", now=NOW, refresh=0)


def test_the_line_chart_draws_a_point_per_value_and_a_gap_for_none():
    svg = charts.lines(
        ["v1", "v2", "v3"], [("f1 <test>", [0.9, None, 0.95]), ("f1 (validation)", [0.88, 0.9, 0.93])], y_label="f1"
    )
    assert svg.count("<circle") == 5 and svg.count("<polyline") == 1  # the test series is broken by its gap
    assert "stroke-dasharray" not in svg and "stroke-dasharray" in charts.lines(["a"], [("s", [2.0])], reference=1.0)
    assert "f1 &lt;test&gt; at v3: 0.95" in svg and "<test>" not in svg
