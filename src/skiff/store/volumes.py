"""The `volumes` table: one row per volume (name, driver, creation time, labels, options).

The engine owns what a volume means (its directory, its mounts, who uses it); this module
only stores rows, each change in one transaction. Removal is two steps so that a crash can
never leave a row whose data is half deleted: `mark_removing` (the row stays, flagged), then
the engine deletes the data, then `delete`. At start the engine finishes every flagged row.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from skiff.errors import NotFound
from skiff.store.db import MetadataDB


@dataclass(frozen=True)
class VolumeRecord:
    name: str
    driver: str
    created: str
    labels: dict
    options: dict
    removing: bool = False


def _volume(row: sqlite3.Row) -> VolumeRecord:
    return VolumeRecord(row["name"], row["driver"], row["created"], json.loads(row["labels"]),
                        json.loads(row["options"]), bool(row["removing"]))


def no_such_volume(name: str) -> NotFound:
    return NotFound(f"get {name}: no such volume")


class VolumeRecords:
    def __init__(self, db: MetadataDB):
        self.db = db

    def insert(self, record: VolumeRecord) -> tuple[VolumeRecord, bool]:
        """(the stored row, True) or, when the name is taken, (the existing row, False)."""
        with self.db.transaction() as cur:
            row = cur.execute("SELECT * FROM volumes WHERE name = ?", (record.name,)).fetchone()
            if row is not None and not row["removing"]:
                return _volume(row), False
            cur.execute("INSERT OR REPLACE INTO volumes (name, driver, created, labels, "
                        "options, removing) VALUES (?, ?, ?, ?, ?, 0)",
                        (record.name, record.driver, record.created,
                         json.dumps(record.labels), json.dumps(record.options)))
        return record, True

    def get(self, name: str) -> VolumeRecord:
        row = self.db.query_one("SELECT * FROM volumes WHERE name = ? AND removing = 0",
                                (name,))
        if row is None:
            raise no_such_volume(name)
        return _volume(row)

    def list(self) -> list[VolumeRecord]:
        return [_volume(r) for r in
                self.db.query("SELECT * FROM volumes WHERE removing = 0 ORDER BY name")]

    def removing(self) -> list[VolumeRecord]:
        """Rows whose removal began and did not finish (a crash)."""
        return [_volume(r) for r in self.db.query("SELECT * FROM volumes WHERE removing = 1")]

    def mark_removing(self, name: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE volumes SET removing = 1 WHERE name = ? AND removing = 0",
                        (name,))
            if cur.rowcount == 0:
                raise no_such_volume(name)

    def delete(self, name: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM volumes WHERE name = ?", (name,))
