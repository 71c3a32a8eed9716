import asyncio
import json

from skiff.engine.logs import read_log
from skiff.monitor.logfile import MAX_PARTIAL, JsonFileLog


def records(path):
    return [json.loads(line) for line in open(path)]


def test_lines_split_and_streams_kept(tmp_path):
    path = tmp_path / "c-json.log"
    log = JsonFileLog(str(path))
    log.write(1, b"hel")
    log.write(1, b"lo\nwor")
    log.write(2, b"oops\n")
    log.close()
    recs = records(path)
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "wor")]
    assert recs[0]["time"].endswith("Z")


def test_endless_line_is_cut(tmp_path):
    path = tmp_path / "c-json.log"
    log = JsonFileLog(str(path))
    log.write(1, b"x" * (MAX_PARTIAL * 3 + 5))
    log.close()
    assert [len(r["log"]) for r in records(path)] == [MAX_PARTIAL] * 3 + [5]


def test_read_back_with_tail_and_timestamps(tmp_path):
    path = tmp_path / "c-json.log"
    log = JsonFileLog(str(path))
    log.write(1, b"a\nb\nc\n")
    log.write(2, b"e\n")
    log.close()

    async def collect(**kw):
        return [item async for batch in read_log(str(path), **kw) for item in batch]

    assert asyncio.run(collect()) == [(1, b"a\nb\nc\n"), (2, b"e\n")]
    assert asyncio.run(collect(tail=2)) == [(1, b"c\n"), (2, b"e\n")]
    assert asyncio.run(collect(stderr=False, tail=0)) == []
    stamped = asyncio.run(collect(timestamps=True, stdout=False))
    assert stamped[0][1].endswith(b"Z e\n")


def test_attributes_from_log_options_and_details_prefix():
    from skiff.engine import logs

    opts = {"labels": "app,missing", "env": "STAGE", "env-regex": "^TEAM"}
    attrs = logs.record_attributes(opts, {"app": "web", "other": "x"},
                                   ["STAGE=prod", "TEAM_A=1", "PATH=/bin"])
    assert attrs == {"app": "web", "STAGE": "prod", "TEAM_A": "1"}
    assert logs.record_attributes({}, {"app": "web"}, []) is None
    assert logs.details_prefix({"b": "x y", "a": "1&2"}) == "a=1%262,b=x+y "
    assert logs.details_prefix(None) == ""


def test_records_carry_attrs_and_details_show_them(tmp_path):
    import json as _json

    from skiff.engine import logs
    from skiff.monitor.logfile import JsonFileLog

    path = str(tmp_path / "c-json.log")
    log = JsonFileLog(path, attrs={"app": "web"})
    log.write(1, b"hello\n")
    log.close()
    line = open(path, "rb").read()
    record = _json.loads(line)
    assert list(record) == ["log", "stream", "attrs", "time"] and record["attrs"] == {"app": "web"}
    assert logs.decode_lines([line.rstrip()], details=True)[0][1] == "app=web hello\n"
    assert logs.decode_lines([line.rstrip()])[0][1] == "hello\n"
