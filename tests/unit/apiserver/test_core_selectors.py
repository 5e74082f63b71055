"""Label and field selector parsing and matching."""

import pytest

from mlkube.local.apiserver import errors, selectors


def _obj(labels=None, **fields):
    return {"metadata": {"name": "n", "namespace": "ns", "labels": labels or {}}, **fields}


@pytest.mark.parametrize(
    "selector, labels, expected",
    [
        ("app=demo", {"app": "demo"}, True),
        ("app==demo", {"app": "demo"}, True),
        ("app=demo", {"app": "other"}, False),
        ("app!=demo", {}, True),
        ("app!=demo", {"app": "demo"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier notin (a)", {}, True),
        ("tier notin (a)", {"tier": "a"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("app=demo,tier in (a,b),!legacy", {"app": "demo", "tier": "a"}, True),
        ("app=demo,tier in (a,b),!legacy", {"app": "demo", "tier": "a", "legacy": "1"}, False),
        ("example.com/role=web", {"example.com/role": "web"}, True),
    ],
)
def test_label_selectors(selector, labels, expected):
    assert selectors.labels_match(selectors.parse_labels(selector), _obj(labels)) is expected


@pytest.mark.parametrize("bad", ["app=(x", "a b c", "in (a)"])
def test_bad_label_selectors_are_400(bad):
    with pytest.raises(errors.APIError) as failed:
        selectors.parse_labels(bad)
    assert failed.value.code == 400


def test_field_selectors_on_events():
    allowed = ("metadata.name", "metadata.namespace", "involvedObject.name", "involvedObject.kind", "source", "type")
    event = _obj(involvedObject={"name": "w1", "kind": "Widget"}, source={"component": "kopf"}, type="Normal")
    parsed = selectors.parse_fields("involvedObject.name=w1,involvedObject.kind==Widget,source=kopf,type!=Warning", allowed)
    assert selectors.fields_match(parsed, event)
    assert not selectors.fields_match(selectors.parse_fields("involvedObject.name=w2", allowed), event)
    assert selectors.fields_match(selectors.parse_fields("metadata.namespace=ns", allowed), event)


def test_unknown_field_selector_is_400_with_the_upstream_message():
    with pytest.raises(errors.APIError) as failed:
        selectors.parse_fields("spec.foo=1", ("metadata.name", "metadata.namespace"))
    assert failed.value.code == 400
    assert failed.value.message == '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_selector_combines_labels_and_fields():
    selector = selectors.Selector(
        labels=selectors.parse_labels("app=demo"), fields=selectors.parse_fields("metadata.name=n", ("metadata.name",))
    )
    assert selector.matches(_obj({"app": "demo"}))
    assert not selector.matches(_obj({"app": "x"}))
