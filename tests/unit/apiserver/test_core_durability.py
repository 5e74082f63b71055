"""The store's durability and limits on a real (temporary) SQLite file: group commit, a failed sync,
etcd's object size limit, history bounded by bytes, quarantine of unreadable rows, file modes, the lock."""

import asyncio
import json
import os
import pathlib
import sqlite3
import stat

import pytest

from mlkube.local.apiserver import errors, limits, statedir, storage


def _obj(name, **extra):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}, **extra}


class RecordingSync:
    """The store's fdatasync seam: really syncs, then records the last RV committed when that sync began."""

    def __init__(self):
        self.store = None
        self.synced_at: list[int] = []
        self.fail = False

    def __call__(self, fd):
        if self.fail:
            raise OSError(5, "Input/output error")
        covered = self.store.rv  # every commit up to here was written before the sync began
        os.fdatasync(fd)
        self.synced_at.append(covered)


@pytest.fixture
def recorded(tmp_path):
    sync = RecordingSync()
    store = storage.Store(str(tmp_path / "s.db"), sync=sync)
    sync.store = store
    store.open()
    yield store, sync
    store.close()


def test_a_write_is_acknowledged_only_after_a_sync_that_covers_it_and_a_burst_shares_syncs(recorded):
    store, sync = recorded
    before = len(sync.synced_at)
    acknowledged: list[tuple[int, int]] = []  # (rv of the write, syncs that had covered it when sync() returned)

    async def client(index):
        await asyncio.sleep(0)
        rv = int(store.write("/configmaps", _obj(f"c{index}"), event_type="ADDED", old=None)["metadata"]["resourceVersion"])
        await store.sync()
        acknowledged.append((rv, sum(1 for synced in sync.synced_at[before:] if synced >= rv)))

    async def burst():
        await asyncio.gather(*(client(index) for index in range(50)))

    asyncio.run(burst())
    assert len(acknowledged) == 50
    assert all(covering >= 1 for _, covering in acknowledged)  # nothing acknowledged before a sync covered it
    assert len(sync.synced_at) - before < 50  # writes that arrived together shared fsyncs
    assert store.durable_rv == store.rv


def test_a_failed_sync_fails_the_waiting_write_and_refuses_every_later_one(recorded):
    store, sync = recorded

    async def write_and_wait():
        store.write("/configmaps", _obj("a"), event_type="ADDED", old=None)
        await store.sync()

    sync.fail = True
    with pytest.raises(errors.APIError) as failed:
        asyncio.run(write_and_wait())
    assert failed.value.code == 500 and "could not be synced to disk" in failed.value.message
    assert "restart the API server" in failed.value.message
    sync.fail = False
    with pytest.raises(errors.APIError) as refused:
        store.write("/configmaps", _obj("b"), event_type="ADDED", old=None)
    assert refused.value.code == 500 and store.get("/configmaps", "ns", "b") is None


def test_an_object_over_etcds_limit_is_refused_with_413_and_nothing_changes(tmp_path):
    store = storage.Store(str(tmp_path / "s.db"))
    store.open()
    rv = store.rv
    big = _obj("big", data={"x": "y" * limits.MAX_OBJECT_BYTES})
    with pytest.raises(errors.APIError) as refused:
        store.write("/configmaps", big, event_type="ADDED", old=None)
    assert refused.value.code == 413 and refused.value.reason == "RequestEntityTooLarge"
    assert f"the limit is {limits.MAX_OBJECT_BYTES} bytes" in refused.value.message and '"big"' in refused.value.message
    assert store.rv == rv and store.get("/configmaps", "ns", "big") is None and "resourceVersion" not in big["metadata"]
    store.close()


def test_history_is_bounded_by_bytes_and_older_resumes_get_410(tmp_path):
    store = storage.Store(str(tmp_path / "s.db"), history=1000, history_bytes=300_000)
    store.open()
    start = store.rv
    for index in range(10):
        store.write("/configmaps", _obj(f"c{index}", data={"x": "y" * 100_000}), event_type="ADDED", old=None)
    assert store.history_bytes <= 300_000
    assert store.floor > start
    with pytest.raises(errors.APIError) as expired:
        store.events_since("/configmaps", start)
    assert expired.value.code == 410
    assert [e.obj["metadata"]["name"] for e in store.events_since("/configmaps", store.rv - 1)] == ["c9"]
    store.close()


def test_unreadable_rows_are_quarantined_to_a_private_file_and_startup_goes_on(tmp_path):
    path = str(tmp_path / "s.db")
    store = storage.Store(path)
    store.open()
    for name in ("good", "bad", "wrong"):
        store.write("/configmaps", _obj(name, data={"k": name}), event_type="ADDED", old=None)
    store.close()
    with sqlite3.connect(path) as db:
        db.execute('UPDATE objects SET body=\'{"metadata": {"name": "bad"\' WHERE name=\'bad\'')
        db.execute("UPDATE objects SET body=? WHERE name='wrong'", (json.dumps(_obj("other")),))

    reopened = storage.Store(path)
    reopened.open()
    assert [o["metadata"]["name"] for o in reopened.list("/configmaps")] == ["good"]
    assert sorted(q.name for q in reopened.quarantined) == ["bad", "wrong"]
    quarantine = reopened.quarantine_path
    assert os.path.dirname(quarantine) == str(tmp_path) and os.path.basename(quarantine).startswith("quarantine-")
    assert stat.S_IMODE(os.stat(quarantine).st_mode) == 0o600
    records = [json.loads(line) for line in pathlib.Path(quarantine).read_text().splitlines()]
    assert {r["name"]: r["body"] for r in records}["bad"] == '{"metadata": {"name": "bad"'
    assert all(r["error"] for r in records)
    reopened.close()

    again = storage.Store(path)
    again.open()  # the rows left the database: a second start quarantines nothing
    assert again.quarantined == [] and again.get("/configmaps", "ns", "good") is not None
    again.close()


def test_a_file_that_is_not_a_database_gives_one_clear_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(storage.Unreadable) as unreadable:
        storage.Store(str(path)).open()
    assert str(path) in str(unreadable.value) and "move it" in str(unreadable.value)


def test_database_files_are_private_even_when_an_older_version_left_them_0644(tmp_path):
    path = tmp_path / "s.db"
    first = storage.Store(str(path))
    first.open()
    first.write("/secrets", _obj("s", data={"password": "aHVudGVyMg=="}), event_type="ADDED", old=None)
    first.close()
    os.chmod(path, 0o644)
    second = storage.Store(str(path))
    second.open()
    second.write("/secrets", _obj("t"), event_type="ADDED", old=None)
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(os.stat(f"{path}{suffix}").st_mode) == 0o600, suffix
    second.close()


def test_a_second_lock_on_a_state_directory_names_the_directory_and_the_holder(tmp_path):
    held = statedir.lock(str(tmp_path))
    with pytest.raises(statedir.Locked) as refused:
        statedir.lock(str(tmp_path))
    assert str(tmp_path) in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    held.release()
    statedir.lock(str(tmp_path)).release()
