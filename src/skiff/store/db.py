"""skiff's metadata: one SQLite database (`<root>/skiff.db`) in WAL mode.

Threads: each thread gets its own connection (a `threading.local`), so that worker threads of
the asyncio daemon read concurrently (WAL lets readers run beside one writer). Writers take
SQLite's write lock with `BEGIN IMMEDIATE` when a transaction starts, waiting up to
`busy_timeout` for another thread or process to finish. Other processes (a CLI running the
engine in-process) may open the same file.

Every state change is one transaction:

    with db.transaction() as cur:
        cur.execute("INSERT INTO images ...", (...))
        cur.execute("INSERT INTO tags ...", (...))

commits both or neither. A `transaction()` inside another on the same thread is a savepoint
of the outer one. Outside a transaction, `query`/`query_one` read the latest committed state.

Schema: `MIGRATIONS` is an append-only list; migration N (1-based) takes the schema from
version N-1 to N, and the current version is kept in `schema_version`. Packages that need
tables of their own append a migration here; a migration once released is never edited.

Durability: `synchronous=NORMAL` (WAL). A power cut may lose the last commits but never
leaves a half one; since blobs and snapshots are made durable before the rows that name them,
a lost commit leaves at most unreferenced blobs, never a row naming a missing blob.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from skiff.errors import Conflict, InvalidArgument, NotFound

MIGRATIONS: list[list[str]] = [
    # 1: images, tags, layers of images, containers
    [
        """CREATE TABLE images (
            id TEXT PRIMARY KEY,              -- config digest, sha256:...
            manifest_digest TEXT,             -- NULL when loaded without a manifest
            config TEXT NOT NULL,             -- the config JSON (its exact bytes are the blob)
            created TEXT,                     -- the config's `created`
            size INTEGER NOT NULL DEFAULT 0,  -- bytes of the unpacked layers
            parent TEXT,                      -- parent image id (build), or NULL
            top_chain_id TEXT,                -- chain id of the top layer, NULL for no layers
            layers TEXT NOT NULL,             -- JSON list of layer descriptors (see images.py)
            loaded TEXT NOT NULL              -- when skiff stored it (RFC 3339)
        )""",
        """CREATE TABLE tags (
            reference TEXT PRIMARY KEY,       -- normalised: docker.io/library/busybox:latest
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
        )""",
        "CREATE INDEX tags_image ON tags(image_id)",
        """CREATE TABLE image_layers (
            image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,             -- 0 = bottom layer
            chain_id TEXT NOT NULL,
            diff_id TEXT NOT NULL,
            blob_digest TEXT,                 -- the stored (maybe compressed) layer blob
            PRIMARY KEY (image_id, idx)
        )""",
        "CREATE INDEX image_layers_chain ON image_layers(chain_id)",
        "CREATE INDEX image_layers_blob ON image_layers(blob_digest)",
        """CREATE TABLE containers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,        -- without docker's leading '/'
            image_id TEXT,
            created TEXT NOT NULL,
            config TEXT NOT NULL,             -- JSON
            state TEXT NOT NULL               -- JSON
        )""",
        "CREATE INDEX containers_image ON containers(image_id)",
    ],
    # 2: volumes (skiff.store.volumes); `removing` is set in the transaction before a
    # volume's data is deleted, so that a crash half-way is finished at the next start
    [
        """CREATE TABLE volumes (
            name TEXT PRIMARY KEY,
            driver TEXT NOT NULL,
            created TEXT NOT NULL,            -- RFC 3339
            labels TEXT NOT NULL,             -- JSON object
            options TEXT NOT NULL,            -- JSON object: the driver's options
            removing INTEGER NOT NULL DEFAULT 0
        )""",
    ],
]


class MetadataDB:
    """The SQLite database at `path`; one connection per thread (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout: float = 10.0):
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        # Counts committed changes made through this object: a reader's cache of anything
        # derived from the database is good while the count it was made at is the current one.
        self.generation = 0
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._migrate()

    # -- connections --------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError("MetadataDB is closed")
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. check_same_thread=False only
        # so that close() may close every thread's connection; each is used by its own thread.
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        self._local.conn = conn
        self._local.depth = 0
        with self._lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every thread's connection; call when no thread uses the database any more."""
        with self._lock:
            self._closed = True
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def __enter__(self) -> MetadataDB:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- transactions and queries -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One atomic state change; nested calls on one thread become savepoints."""
        conn = self._conn()
        depth = self._local.depth
        savepoint = f"sp{depth}"
        conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {savepoint}")
        self._local.depth = depth + 1
        cur = conn.cursor()
        try:
            yield cur
        except BaseException:
            if depth == 0:
                conn.execute("ROLLBACK")
            else:
                conn.execute(f"ROLLBACK TO {savepoint}")
                conn.execute(f"RELEASE {savepoint}")
            raise
        else:
            conn.execute("COMMIT" if depth == 0 else f"RELEASE {savepoint}")
            if depth == 0:
                with self._lock:  # commits come from worker threads too
                    self.generation += 1
        finally:
            cur.close()
            self._local.depth = depth

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self._conn().execute(sql, params).fetchone()

    def schema_version(self) -> int:
        row = self.query_one("SELECT version FROM schema_version")
        return row[0] if row else 0

    def _migrate(self) -> None:
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                cur.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = row[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(f"{self.path} has schema version {version}, newer than this "
                                   f"skiff knows ({len(MIGRATIONS)}): upgrade skiff")
            for number in range(version + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[number - 1]:
                    cur.execute(statement)
                cur.execute("UPDATE schema_version SET version = ?", (number,))


# -- containers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    name: str  # without the leading '/'
    image_id: str | None
    created: str
    config: dict
    state: dict


def _name(name: str) -> str:
    name = name[1:] if name.startswith("/") else name
    if not name:
        raise InvalidArgument("container name must not be empty")
    return name


def _container(row: sqlite3.Row) -> ContainerRecord:
    return ContainerRecord(row["id"], row["name"], row["image_id"], row["created"],
                           json.loads(row["config"]), json.loads(row["state"]))


def _name_conflict(name: str, owner: str) -> Conflict:
    return Conflict(f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{owner}". You have to remove (or rename) that container to be able to '
                    f"reuse that name.")


class ContainerRecords:
    """The `containers` table, for the engine. Names are stored without docker's leading '/'
    (and accepted with or without it). Every method is one transaction."""

    def __init__(self, db: MetadataDB):
        self.db = db

    def insert(self, id: str, name: str, image_id: str | None, created: str, config: dict,
               state: dict) -> ContainerRecord:
        name = _name(name)
        with self.db.transaction() as cur:
            owner = cur.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            if owner:
                raise _name_conflict(name, owner[0])
            if cur.execute("SELECT 1 FROM containers WHERE id = ?", (id,)).fetchone():
                raise Conflict(f"container id {id} is already in use")
            cur.execute("INSERT INTO containers (id, name, image_id, created, config, state) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (id, name, image_id, created, json.dumps(config), json.dumps(state)))
        return ContainerRecord(id, name, image_id, created, config, state)

    def update_state(self, id: str, state: dict) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE containers SET state = ? WHERE id = ?", (json.dumps(state), id))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")

    def update_config(self, id: str, config: dict) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE containers SET config = ? WHERE id = ?",
                        (json.dumps(config), id))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")

    def get(self, id: str) -> ContainerRecord:
        """By full id only."""
        row = self.db.query_one("SELECT * FROM containers WHERE id = ?", (id,))
        if row is None:
            raise NotFound(f"No such container: {id}")
        return _container(row)

    def find(self, id_or_name: str) -> ContainerRecord:
        """As docker looks containers up: full id, then exact name, then unique id prefix."""
        if not id_or_name:
            raise NotFound("No such container: ")
        row = self.db.query_one("SELECT * FROM containers WHERE id = ?", (id_or_name,))
        if row is None:
            name = id_or_name[1:] if id_or_name.startswith("/") else id_or_name
            row = self.db.query_one("SELECT * FROM containers WHERE name = ?", (name,))
        if row is None:
            rows = self.db.query("SELECT * FROM containers WHERE substr(id, 1, ?) = ? LIMIT 2",
                                 (len(id_or_name), id_or_name))
            if len(rows) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {id_or_name}")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"No such container: {id_or_name}")
        return _container(row)

    def list(self) -> list[ContainerRecord]:
        """Every container, newest first."""
        return [_container(r) for r in
                self.db.query("SELECT * FROM containers ORDER BY created DESC, id")]

    def delete(self, id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM containers WHERE id = ?", (id,))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")

    def rename(self, id: str, name: str) -> None:
        name = _name(name)
        with self.db.transaction() as cur:
            owner = cur.execute("SELECT id FROM containers WHERE name = ?", (name,)).fetchone()
            if owner and owner[0] != id:
                raise _name_conflict(name, owner[0])
            cur.execute("UPDATE containers SET name = ? WHERE id = ?", (name, id))
            if cur.rowcount == 0:
                raise NotFound(f"No such container: {id}")
