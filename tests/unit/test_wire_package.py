"""wire/ stays pure: no I/O modules, nothing of skiff but skiff.errors and itself."""

import ast
import pathlib

import skiff.wire

PACKAGE = pathlib.Path(skiff.wire.__file__).parent
IO_MODULES = {"os", "io", "socket", "subprocess", "pathlib", "shutil", "tempfile", "asyncio",
              "select", "selectors", "threading", "urllib", "http", "ctypes", "fcntl"}


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node.module


def test_imports_are_pure():
    modules = list(PACKAGE.glob("*.py"))
    assert len(modules) >= 6
    for path in modules:
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert top not in IO_MODULES, f"{path.name} imports {name}"
            if top == "skiff":
                assert name == "skiff.errors" or name.startswith("skiff.wire."), (
                    f"{path.name} imports {name}")


def test_docstring_states_the_rule():
    assert "skiff.errors" in skiff.wire.__doc__ and "no I/O" in skiff.wire.__doc__
