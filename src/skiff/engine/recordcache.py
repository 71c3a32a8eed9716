"""A write-through cache of the containers table, for the hot reads (`ps`, inspect, every
lookup by name) that otherwise parse every container's JSON documents on each request.

Only this process writes the table, so the cache is coherent: every write goes to SQLite
first (one transaction, as before) and then drops the cached copy of what it changed.
"""

from __future__ import annotations


class CachedRecords:
    def __init__(self, records):
        self._records = records
        self._by_id: dict | None = None  # id -> ContainerRecord, or None: reload on next read

    # reads -------------------------------------------------------------------------------
    def _all(self) -> dict:
        if self._by_id is None:
            self._by_id = {r.id: r for r in self._records.list()}
        return self._by_id

    def list(self):
        """Newest first, as ContainerRecords.list."""
        return list(self._all().values())

    def get(self, id: str):
        record = self._all().get(id)
        if record is None:
            return self._records.get(id)  # raises docker's NotFound
        return record

    def find(self, id_or_name: str):
        records = self._all()
        if id_or_name in records:
            return records[id_or_name]
        name = id_or_name[1:] if id_or_name.startswith("/") else id_or_name
        for record in records.values():
            if record.name == name:
                return record
        return self._records.find(id_or_name)  # prefixes, and docker's errors

    # writes ------------------------------------------------------------------------------
    def _forget(self) -> None:
        self._by_id = None

    def insert(self, *args, **kwargs):
        try:
            return self._records.insert(*args, **kwargs)
        finally:
            self._forget()

    def update_state(self, id: str, state: dict) -> None:
        self._records.update_state(id, state)
        self._refresh(id)

    def update_config(self, id: str, config: dict) -> None:
        self._records.update_config(id, config)
        self._refresh(id)

    def delete(self, id: str) -> None:
        try:
            self._records.delete(id)
        finally:
            self._forget()

    def rename(self, id: str, name: str) -> None:
        try:
            self._records.rename(id, name)
        finally:
            self._forget()

    def _refresh(self, id: str) -> None:
        if self._by_id is not None:
            self._by_id[id] = self._records.get(id)
