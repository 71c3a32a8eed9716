"""The volumes table: rows, the name taken twice, two-step removal."""

import pytest

from skiff.errors import NotFound
from skiff.store import MetadataDB
from skiff.store.volumes import VolumeRecord, VolumeRecords


@pytest.fixture
def records(tmp_path):
    db = MetadataDB(tmp_path / "skiff.db")
    try:
        yield VolumeRecords(db)
    finally:
        db.close()


def test_insert_get_list(records):
    stored, created = records.insert(VolumeRecord("b", "local", "2026-01-01T00:00:00Z",
                                                  {"k": "v"}, {}))
    assert created and stored.labels == {"k": "v"}
    records.insert(VolumeRecord("a", "local", "2026-01-01T00:00:00Z", {}, {"type": "tmpfs"}))
    assert [r.name for r in records.list()] == ["a", "b"]
    assert records.get("a").options == {"type": "tmpfs"}
    again, created = records.insert(VolumeRecord("b", "local", "x", {}, {}))
    assert not created and again.labels == {"k": "v"}


def test_two_step_removal(records, tmp_path):
    records.insert(VolumeRecord("v", "local", "t", {}, {}))
    records.mark_removing("v")
    with pytest.raises(NotFound, match="get v: no such volume"):
        records.get("v")
    assert [r.name for r in records.removing()] == ["v"]
    assert records.list() == []
    # a crash here: the flag survives a reopen
    reopened = VolumeRecords(MetadataDB(tmp_path / "skiff.db"))
    assert [r.name for r in reopened.removing()] == ["v"]
    reopened.delete("v")
    assert records.removing() == []
    with pytest.raises(NotFound):
        records.mark_removing("v")
