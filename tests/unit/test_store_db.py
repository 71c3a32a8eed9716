import sqlite3
import threading

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.store import ContainerRecords, MetadataDB
from skiff.store.db import MIGRATIONS


@pytest.fixture
def db(tmp_path):
    db = MetadataDB(tmp_path / "skiff.db")
    try:
        yield db
    finally:
        db.close()


def test_schema_and_wal(db, tmp_path):
    assert db.schema_version() == len(MIGRATIONS)
    assert db.query_one("PRAGMA journal_mode")[0] == "wal"
    tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"images", "tags", "image_layers", "containers", "schema_version"} <= tables
    db.close()
    again = MetadataDB(tmp_path / "skiff.db")  # reopening migrates nothing
    assert again.schema_version() == len(MIGRATIONS)
    again.close()


def test_newer_schema_refused(tmp_path):
    db = MetadataDB(tmp_path / "skiff.db")
    with db.transaction() as cur:
        cur.execute("UPDATE schema_version SET version = 999")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        MetadataDB(tmp_path / "skiff.db")


def _image(cur, id):
    cur.execute("INSERT INTO images (id, config, layers, loaded) VALUES (?, '{}', '[]', 'now')",
                (id,))


def test_transaction_is_atomic(db):
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as cur:
            _image(cur, "sha256:a")
            cur.execute("INSERT INTO tags VALUES ('docker.io/library/a:latest', 'sha256:a')")
            1 / 0
    assert db.query("SELECT * FROM images") == []
    assert db.query("SELECT * FROM tags") == []


def test_nested_transaction_is_savepoint(db):
    with db.transaction() as cur:
        _image(cur, "sha256:a")
        with pytest.raises(ValueError):
            with db.transaction() as inner:
                _image(inner, "sha256:b")
                raise ValueError
        with db.transaction() as inner:
            _image(inner, "sha256:c")
    assert [r[0] for r in db.query("SELECT id FROM images ORDER BY id")] == ["sha256:a", "sha256:c"]


def test_foreign_keys_cascade(db):
    with db.transaction() as cur:
        _image(cur, "sha256:a")
        cur.execute("INSERT INTO tags VALUES ('docker.io/library/a:latest', 'sha256:a')")
    with pytest.raises(sqlite3.IntegrityError):
        with db.transaction() as cur:
            cur.execute("INSERT INTO tags VALUES ('docker.io/library/b:latest', 'sha256:zz')")
    with db.transaction() as cur:
        cur.execute("DELETE FROM images WHERE id = 'sha256:a'")
    assert db.query("SELECT * FROM tags") == []


def test_threads_each_get_a_connection(db):
    errors = []

    def work(n):
        try:
            for i in range(20):
                with db.transaction() as cur:
                    _image(cur, f"sha256:{n}-{i}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.query_one("SELECT count(*) FROM images")[0] == 80


def test_two_handles_same_file(tmp_path):
    a, b = MetadataDB(tmp_path / "x.db"), MetadataDB(tmp_path / "x.db")
    try:
        with a.transaction() as cur:
            _image(cur, "sha256:a")
        assert b.query_one("SELECT id FROM images")[0] == "sha256:a"
    finally:
        a.close()
        b.close()


@pytest.fixture
def containers(db):
    return ContainerRecords(db)


def test_container_records(containers):
    c = containers.insert("abc123", "/web", "sha256:img", "2024-01-01T00:00:00Z",
                          {"Cmd": ["sh"]}, {"Status": "created"})
    assert c.name == "web"
    got = containers.get("abc123")
    assert got == c and got.config == {"Cmd": ["sh"]}
    containers.update_state("abc123", {"Status": "running", "Pid": 42})
    assert containers.get("abc123").state == {"Status": "running", "Pid": 42}
    for key in ("abc123", "web", "/web", "ab", "a"):
        assert containers.find(key).id == "abc123"
    containers.rename("abc123", "db")
    assert containers.find("db").id == "abc123"
    with pytest.raises(NotFound, match="No such container: web"):
        containers.find("web")
    assert [r.id for r in containers.list()] == ["abc123"]
    containers.delete("abc123")
    with pytest.raises(NotFound, match="No such container: abc123"):
        containers.get("abc123")
    with pytest.raises(NotFound):
        containers.delete("abc123")
    with pytest.raises(NotFound):
        containers.update_state("abc123", {})
    with pytest.raises(NotFound):
        containers.rename("abc123", "x")


def test_container_name_conflicts(containers):
    containers.insert("aaa111", "web", None, "1", {}, {})
    containers.insert("aaa222", "db", None, "2", {}, {})
    with pytest.raises(Conflict, match=r'The container name "/web" is already in use by '
                                       r'container "aaa111"'):
        containers.insert("bbb", "web", None, "3", {}, {})
    with pytest.raises(Conflict):
        containers.insert("aaa111", "other", None, "3", {}, {})
    with pytest.raises(Conflict, match='"/db"'):
        containers.rename("aaa111", "db")
    containers.rename("aaa111", "web")  # its own name: fine
    with pytest.raises(InvalidArgument, match="multiple IDs found with provided prefix: aaa"):
        containers.find("aaa")
    with pytest.raises(InvalidArgument):
        containers.insert("ccc", "/", None, "3", {}, {})
    assert [r.id for r in containers.list()] == ["aaa222", "aaa111"]  # newest first
