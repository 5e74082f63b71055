"""pytest imports test modules by basename (rootdir imports, no packages): two test files with one
name in different folders stop the whole collection. Every module name under tests/ is unique."""

from __future__ import annotations

import collections
import pathlib

TESTS = pathlib.Path(__file__).parents[1]


def test_every_module_under_tests_has_a_name_of_its_own():
    names = collections.defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name not in ("__init__.py", "conftest.py") and "__pycache__" not in path.parts:
            names[path.name].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
