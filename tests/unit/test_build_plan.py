"""Stages, global ARGs, --target and skipped stages, as values."""

import pytest

from skiff.build.dockerfile import DockerfileError, parse
from skiff.build.plan import plan_build


def test_global_args_in_from_and_build_arg_override():
    df = parse("ARG TAG=1\nARG BASE=busy${TAG}\nFROM $BASE\n")
    assert plan_build(df).stages[0].base == "busy1"
    assert plan_build(df, {"BASE": "other"}).stages[0].base == "other"
    assert plan_build(df, {"TAG": "2"}).stages[0].base == "busy2"
    assert plan_build(df).global_args == {"TAG": "1", "BASE": "busy1"}


def test_unused_stages_skipped_and_dependencies_first():
    df = parse("FROM busybox AS a\nFROM busybox AS unused\nRUN false\n"
               "FROM a AS b\nFROM busybox\nCOPY --from=b /x /y\nCOPY --from=0 /x /z\n")
    plan = plan_build(df)
    assert plan.needed == [0, 2, 3]
    assert plan.stages[2].base_stage == 0
    assert plan.stages[3].copy_from == {0, 2}


def test_target():
    df = parse("FROM busybox AS a\nFROM busybox AS b\nFROM busybox\n")
    assert plan_build(df, target="a").needed == [0]
    assert plan_build(df, target="B").needed == [1]
    with pytest.raises(DockerfileError, match="failed to reach build target nope"):
        plan_build(df, target="nope")


def test_errors():
    with pytest.raises(DockerfileError, match="file with no instructions"):
        plan_build(parse("# nothing\n"))
    with pytest.raises(DockerfileError, match="no build stage"):
        plan_build(parse("RUN echo\n"))
    with pytest.raises(DockerfileError, match="duplicate stage name"):
        plan_build(parse("FROM a AS x\nFROM b AS x\n"))
    with pytest.raises(DockerfileError, match="base name .* should not be blank"):
        plan_build(parse("ARG B\nFROM $B\n"))
    with pytest.raises(DockerfileError, match="refers to current or future"):
        plan_build(parse("FROM a\nCOPY --from=0 /a /b\n"))
