"""The Dockerfile parser: directives, comments, continuations, heredocs, forms, errors."""

import pytest

from skiff.build.dockerfile import DockerfileError, parse


def cmds(text):
    return [(i.cmd, i.args) for i in parse(text).instructions]


def test_instructions_case_insensitive_and_lines():
    df = parse("from busybox\n\n# comment\nRun echo hi\n")
    assert [(i.cmd, i.line) for i in df.instructions] == [("from", 1), ("run", 4)]
    assert df.instructions[1].original == "Run echo hi"


def test_directives_only_at_top():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`"
    assert df.instructions[1].args == ["echo a   b"]
    late = parse("FROM busybox\n# escape=`\nRUN echo \\\n b\n")
    assert late.escape == "\\" and late.instructions[1].args == ["echo  b"]
    after_comment = parse("# hello\n# escape=`\nFROM busybox\n")
    assert after_comment.escape == "\\"


def test_bad_escape_and_duplicate_directive():
    with pytest.raises(DockerfileError, match="invalid escape token"):
        parse("# escape=x\nFROM busybox\n")
    with pytest.raises(DockerfileError, match="only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM busybox\n")


def test_continuations_skip_comments_and_blank_lines():
    df = parse("FROM busybox\nRUN echo a \\\n# inside\n\n    b \\\n c\n")
    assert df.instructions[1].args == ["echo a     b  c"]


def test_unknown_instruction_names_line():
    with pytest.raises(DockerfileError) as info:
        parse("FROM busybox\n\nFOO bar\n")
    assert str(info.value) == "dockerfile parse error line 3: unknown instruction: FOO"
    assert info.value.line == 3


def test_exec_and_shell_forms():
    df = parse('FROM busybox\nCMD ["echo", "a b"]\nENTRYPOINT top -b\nRUN ["sh", "-c", "x"]\n'
               'CMD [not json\n')
    cmd, ep, run, bad = df.instructions[1:]
    assert cmd.json_form and cmd.args == ["echo", "a b"]
    assert not ep.json_form and ep.args == ["top -b"]
    assert run.json_form and run.args == ["sh", "-c", "x"]
    assert not bad.json_form and bad.args == ["[not json"]


def test_from_forms_and_errors():
    assert cmds("FROM busybox AS Build\n") == [("from", ["busybox", "build"])]
    df = parse("FROM --platform=linux/amd64 busybox\n")
    assert df.instructions[0].flags == {"platform": "linux/amd64"}
    with pytest.raises(DockerfileError, match="FROM requires either one or three"):
        parse("FROM a b\n")
    with pytest.raises(DockerfileError, match="invalid name for build stage"):
        parse("FROM a AS 1x\n")


def test_env_and_label_pairs_keep_quotes():
    df = parse('FROM b\nENV A=1 B="x y" C=a\\ b\nENV LEGACY some value\nLABEL "k 1"=v\n')
    env, legacy, label = df.instructions[1:]
    assert env.args == ["A=1", 'B="x y"', "C=a\\ b"]
    assert legacy.args == ["LEGACY=some value"]
    assert label.args == ['"k 1"=v']
    with pytest.raises(DockerfileError, match="can't find = in \"b\""):
        parse("FROM b\nENV a=1 b\n")
    with pytest.raises(DockerfileError, match="ENV must have two arguments"):
        parse("FROM b\nENV a\n")


def test_copy_flags_and_forms():
    df = parse('FROM b\nCOPY --from=build --chown=1:2 --chmod=640 a b /dst/\n'
               'COPY ["a b", "/c d"]\n')
    c1, c2 = df.instructions[1:]
    assert c1.flags == {"from": "build", "chown": "1:2", "chmod": "640"}
    assert c1.args == ["a", "b", "/dst/"]
    assert c2.json_form and c2.args == ["a b", "/c d"]
    with pytest.raises(DockerfileError, match="unknown flag: nope"):
        parse("FROM b\nCOPY --nope=1 a b\n")
    with pytest.raises(DockerfileError, match="COPY requires at least two arguments"):
        parse("FROM b\nCOPY a\n")


def test_heredocs():
    text = ("FROM b\nRUN <<EOF\necho one\necho two\nEOF\n"
            "COPY <<-'END' /x\n\thello $A\n\tEND\nRUN cat <<A <<B\na\nA\nb\nB\nCMD x\n")
    df = parse(text)
    run, copy, two, cmd = df.instructions[1:]
    assert run.heredocs[0].name == "EOF" and run.heredocs[0].content == "echo one\necho two\n"
    assert copy.heredocs[0].content == "hello $A\n" and not copy.heredocs[0].expand
    assert copy.heredocs[0].chomp
    assert [h.content for h in two.heredocs] == ["a\n", "b\n"]
    assert cmd.args == ["x"] and cmd.line == 14
    with pytest.raises(DockerfileError, match="unterminated heredoc"):
        parse("FROM b\nRUN <<EOF\nnever\n")


def test_healthcheck():
    df = parse('FROM b\nHEALTHCHECK --interval=5s --retries=3 CMD ["true"]\n'
               "HEALTHCHECK CMD wget -q localhost\nHEALTHCHECK NONE\n")
    h1, h2, h3 = df.instructions[1:]
    assert h1.flags == {"interval": "5s", "retries": "3"} and h1.args == ["CMD", "true"]
    assert h2.args == ["CMD", "wget -q localhost"] and not h2.json_form
    assert h3.args == ["NONE"]
    with pytest.raises(DockerfileError, match="Unknown type"):
        parse("FROM b\nHEALTHCHECK RUN x\n")


def test_onbuild():
    df = parse("FROM b\nONBUILD RUN echo hi\n")
    assert df.instructions[1].onbuild.cmd == "run"
    assert df.instructions[1].args == ["RUN echo hi"]
    with pytest.raises(DockerfileError, match="Chaining ONBUILD"):
        parse("FROM b\nONBUILD ONBUILD RUN x\n")
    with pytest.raises(DockerfileError, match="isn't allowed as an ONBUILD trigger"):
        parse("FROM b\nONBUILD FROM x\n")


def test_argument_errors():
    for text, message in [("FROM b\nRUN\n", "RUN requires at least one argument"),
                          ("FROM b\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON"),
                          ("FROM b\nUSER\n", "USER requires exactly one argument"),
                          ("FROM b\nEXPOSE\n", "EXPOSE requires at least one argument"),
                          ("FROM b\nARG\n", "ARG requires at least one argument"),
                          ("FROM b\nSTOPSIGNAL a b\n", "STOPSIGNAL requires exactly one")]:
        with pytest.raises(DockerfileError, match=message):
            parse(text)


def test_bom_crlf_and_bytes():
    df = parse(b"\xef\xbb\xbfFROM busybox\r\nRUN echo hi\r\n")
    assert [i.cmd for i in df.instructions] == ["from", "run"]
    assert df.instructions[1].args == ["echo hi"]
