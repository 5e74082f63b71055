"""The store: commits, RV counter across reopen, history, 410, subscribers."""

import pytest

from mlkube.local.apiserver import errors, storage


def _obj(name, uid=None, **extra):
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}"},
        **extra,
    }


@pytest.fixture
def store(tmp_path):
    opened = storage.Store(str(tmp_path / "s.db"), history=3)
    opened.open()
    yield opened
    opened.close()


def test_every_write_takes_the_next_rv_and_notifies_in_order(store):
    seen = []
    store.subscribe(lambda event: seen.append((event.type, event.obj["metadata"]["name"], event.rv)))
    start = store.rv
    a = store.write("/configmaps", _obj("a"), event_type="ADDED", old=None)
    b = store.write("/configmaps", _obj("b"), event_type="ADDED", old=None)
    store.write("/configmaps", _obj("a"), event_type="DELETED", old=a)
    assert [rv for _, _, rv in seen] == [start + 1, start + 2, start + 3]
    assert b["metadata"]["resourceVersion"] == str(start + 2)
    assert store.get("/configmaps", "ns", "a") is None
    assert [o["metadata"]["name"] for o in store.list("/configmaps")] == ["b"]
    assert store.by_uid("uid-b")[1] is b


def test_history_replays_per_key_and_expires_with_410(store):
    start = store.rv
    for name in ("a", "b", "c", "d"):
        store.write("/configmaps", _obj(name), event_type="ADDED", old=None)
    store.write("/secrets", _obj("s"), event_type="ADDED", old=None)
    assert [e.obj["metadata"]["name"] for e in store.events_since("/configmaps", start + 2)] == ["c", "d"]
    with pytest.raises(errors.APIError) as expired:
        store.events_since("/configmaps", start)
    assert expired.value.code == 410 and expired.value.reason == "Expired"


def test_reopen_keeps_objects_and_moves_past_every_earlier_rv(tmp_path):
    first = storage.Store(str(tmp_path / "s.db"))
    first.open()
    written = first.write("/configmaps", _obj("a", data={"k": "v"}), event_type="ADDED", old=None)
    last_rv = first.rv
    first.close()
    second = storage.Store(str(tmp_path / "s.db"))
    second.open()
    assert second.get("/configmaps", "ns", "a") == written
    assert second.rv > last_rv and second.floor == second.rv
    with pytest.raises(errors.APIError):
        second.events_since("/configmaps", last_rv)  # watches of the previous run must re-list
    assert second.events_since("/configmaps", second.rv) == []
    second.close()


def test_reopen_after_a_delete_still_moves_past_the_delete_rv(tmp_path):
    first = storage.Store(str(tmp_path / "s.db"))
    first.open()
    written = first.write("/configmaps", _obj("a"), event_type="ADDED", old=None)
    first.write("/configmaps", _obj("b"), event_type="ADDED", old=None)
    first.write("/configmaps", dict(written), event_type="DELETED", old=written)
    deleted_rv = first.rv
    first.close()
    second = storage.Store(str(tmp_path / "s.db"))
    second.open()
    assert second.rv > deleted_rv and second.get("/configmaps", "ns", "a") is None
    restarted_rv = second.rv
    second.close()
    third = storage.Store(str(tmp_path / "s.db"))
    third.open()
    assert third.rv > restarted_rv  # every start takes a new RV, even without writes in between
    third.close()
