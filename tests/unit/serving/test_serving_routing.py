"""Routing table validation and the per-request choices (weights, sticky hashing, mirroring)."""

from __future__ import annotations

import copy
import json
import random

import pytest

from mlkube.serving import routing

TABLE = {
    "deployment": "churn-prod",
    "namespace": "ml",
    "project": "churn",
    "generation": 7,
    "backends": {
        "3": {"url": "http://127.1.0.5:80", "model": "churn-prod-v3"},
        "4": {"url": "http://127.1.0.6:80/", "model": "churn-prod-v4"},
    },
    "split": [{"version": 3, "weight": 90, "role": "stable"}, {"version": 4, "weight": 10, "role": "canary"}],
    "sticky": None,
    "shadow": None,
    "compare": None,
    "preview": None,
    "capture": {"enabled": True, "sampleRate": 0.5, "uri": "file:///tmp/store", "endpoint": None},
}


def table(**changes) -> routing.RoutingTable:
    doc = copy.deepcopy(TABLE)
    doc.update(changes)
    return routing.RoutingTable.parse(doc)


def test_parse_reads_every_field():
    t = table(
        sticky={"header": "X-User-Id"},
        shadow={"version": 4, "percent": 25},
        preview={"version": 4},
        compare={"version": 4, "percent": 100},
    )
    assert t.backends[4] == routing.Backend(url="http://127.1.0.6:80", model="churn-prod-v4")
    assert t.split == [routing.Target(version=3, weight=90, role="stable"), routing.Target(version=4, weight=10, role="canary")]
    assert t.sticky_header == "x-user-id"
    assert t.shadow == routing.Mirror(version=4, percent=25)
    assert t.preview_version == 4 and t.stable_version == 3 and t.generation == 7
    assert t.capture == routing.Capture(enabled=True, sample_rate=0.5, uri="file:///tmp/store")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"deployment": ""}, "deployment"),
        ({"backends": {}}, "backends"),
        ({"backends": {"3": {"url": "ftp://x", "model": "m"}}}, "backends.3.url"),
        ({"backends": {"3": {"url": "http://x"}}}, "backends.3.model"),
        ({"split": [{"version": 5, "weight": 100, "role": "stable"}]}, "split[0].version"),
        ({"split": [{"version": 3, "weight": -1, "role": "stable"}]}, "split[0].weight"),
        ({"split": [{"version": 3, "weight": 0, "role": "stable"}]}, "split: the weights sum to 0"),
        ({"split": [{"version": 3, "weight": 1, "role": "boss"}]}, "split[0].role"),
        ({"shadow": {"version": 9, "percent": 100}}, "shadow.version"),
        ({"shadow": {"version": 4, "percent": 150}}, "shadow.percent"),
        ({"compare": {"version": 4}, "split": [{"version": 4, "weight": 1, "role": "canary"}]}, "compare: needs a split entry"),
        ({"preview": {"version": 8}}, "preview.version"),
        ({"capture": {"enabled": True}}, "capture.uri"),
        ({"capture": {"enabled": True, "uri": "file:///x", "sampleRate": 2}}, "capture.sampleRate"),
        ({"sticky": {"header": ""}}, "sticky"),
    ],
)
def test_parse_names_the_bad_field(changes, field):
    with pytest.raises(routing.RoutesError, match=field.replace("[", r"\[").replace("]", r"\]")):
        table(**changes)


def test_the_document_round_trips_and_keeps_the_wire_form_routers_read():
    t = table(sticky={"header": "X-User-Id"}, compare={"version": 4, "percent": 100})
    doc = json.loads(t.document())
    assert routing.RoutingTable.parse(doc) == t
    assert doc["backends"]["4"] == {"url": "http://127.1.0.6:80", "model": "churn-prod-v4"}
    assert doc["split"][1] == {"version": 4, "weight": 10, "role": "canary"}
    assert (doc["shadow"], doc["preview"], doc["sticky"]) == (None, None, {"header": "X-User-Id"})
    assert doc["capture"] == {"enabled": True, "sampleRate": 0.5, "uri": "file:///tmp/store", "endpoint": None}


def test_older_and_newer_tables_are_read_leniently():
    lenient = table(split=[{"version": 3, "weight": 1}], capture=None, futureField={"x": 1})
    assert lenient.split[0].role == "stable" and lenient.capture == routing.Capture()
    assert lenient.sticky_header is None and lenient.preview_version is None


@pytest.mark.parametrize("doc", [[], "routes", None])
def test_a_table_that_is_not_an_object_is_refused(doc):
    with pytest.raises(routing.RoutesError, match="routes: expected a JSON object"):
        routing.RoutingTable.parse(doc)


def test_choose_splits_the_unit_interval_by_weight():
    t = table()
    draws = [i / 1000 for i in range(1000)]
    chosen = [routing.choose(t, draw=d) for d in draws]
    assert sum(c.version == 4 for c in chosen) == 100
    assert routing.choose(t, draw=0.0) == routing.Choice(3, "stable")
    assert routing.choose(t, draw=0.95) == routing.Choice(4, "canary")


def test_choose_respects_weights_with_random_draws():
    t = table()
    rng = random.Random(1)
    share = sum(routing.choose(t, draw=rng.random()).version == 4 for _ in range(20_000)) / 20_000
    assert 0.09 < share < 0.11


def test_zero_weight_entry_never_chosen():
    t = table(split=[{"version": 3, "weight": 100, "role": "stable"}, {"version": 4, "weight": 0, "role": "canary"}])
    assert {routing.choose(t, draw=i / 100).version for i in range(100)} == {3}
    assert routing.choose(t, draw=0.999999).version == 3


def test_sticky_draw_is_stable_per_user_and_spreads_users_by_weight():
    t = table(split=[{"version": 3, "weight": 50, "role": "stable"}, {"version": 4, "weight": 50, "role": "candidate"}])
    first = [routing.choose(t, draw=routing.sticky_draw("churn-prod", f"user-{i}")).version for i in range(4000)]
    again = [routing.choose(t, draw=routing.sticky_draw("churn-prod", f"user-{i}")).version for i in range(4000)]
    assert first == again
    assert 0.46 < first.count(4) / 4000 < 0.54
    assert all(0.0 <= routing.sticky_draw("d", str(i)) < 1.0 for i in range(1000))


def test_sticky_assignment_differs_between_deployments():
    a = [routing.sticky_draw("a", f"user-{i}") < 0.5 for i in range(200)]
    b = [routing.sticky_draw("b", f"user-{i}") < 0.5 for i in range(200)]
    assert a != b


@pytest.mark.parametrize("percent, expected", [(0, 0), (25, 250), (100, 1000)])
def test_mirror_sampling_takes_the_configured_share(percent, expected):
    mirror = routing.Mirror(version=4, percent=percent)
    assert sum(routing.is_mirrored(mirror, draw=i / 1000) for i in range(1000)) == expected
    assert not routing.is_mirrored(None, draw=0.0)
