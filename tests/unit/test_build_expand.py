"""Variable substitution as docker's shell lexer does it."""

import pytest

from skiff.build.expand import ExpansionError, expand_heredoc, expand_word, expand_words

ENV = {"A": "a", "E": "", "S": "x y"}


@pytest.mark.parametrize("text,expected", [
    ("$A", "a"), ("${A}", "a"), ("pre${A}post", "preapost"), ("$NOPE", ""),
    ("${NOPE:-def}", "def"), ("${E:-def}", "def"), ("${E-def}", ""), ("${NOPE-def}", "def"),
    ("${A:-def}", "a"), ("${A:+set}", "set"), ("${E:+set}", ""), ("${E+set}", "set"),
    ("${NOPE:+set}", ""), ("${NOPE:-$A}", "a"), ("${NOPE:-${A}b}", "ab"),
    ("'$A'", "$A"), ('"$A"', "a"), ('"a b"', "a b"), ("\\$A", "$A"), ('"\\$A"', "$A"),
    ('"\\a"', "\\a"), ("a\\ b", "a b"), ("$", "$"), ("$1", ""),
    ("${S}", "x y"), ('"it\'s"', "it's"),
])
def test_expand_word(text, expected):
    assert expand_word(text, ENV) == expected


def test_backtick_escape():
    assert expand_word("`$A", ENV, "`") == "$A"
    assert expand_word("c:\\dir", ENV, "`") == "c:\\dir"


def test_errors():
    with pytest.raises(ExpansionError):
        expand_word("${A", ENV)
    with pytest.raises(ExpansionError):
        expand_word("'open", ENV)
    with pytest.raises(ExpansionError, match="NOPE"):
        expand_word("${NOPE:?must be set}", ENV)
    with pytest.raises(ExpansionError, match="unsupported modifier"):
        expand_word("${A:=x}", ENV)


def test_words_split_unquoted_expansions_only():
    assert expand_words("$S 53/udp", ENV) == ["x", "y", "53/udp"]
    assert expand_words('"$S" z', ENV) == ["x y", "z"]
    assert expand_words("  a   b ", ENV) == ["a", "b"]
    assert expand_words("$E", ENV) == []
    assert expand_words("p$S", ENV) == ["px", "y"]


def test_heredoc_keeps_quotes_and_backslashes():
    assert expand_heredoc('say "$A" \'${S}\' \\n \\$A\n', ENV) == 'say "a" \'x y\' \\n $A\n'
