"""`make bench` runs every script in benchmarks/ from a fresh clone: each package a script imports
is a dependency of mlkube or in its `benchmark` extra, which `make bench` installs.

Reads the scripts' source and the installed distributions' metadata only.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def imported(script: pathlib.Path) -> set[str]:
    """Top-level names of the modules ``script`` imports anywhere (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_package_a_benchmark_imports_is_installed_by_make_bench():
    provided = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    provided |= {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["benchmark"]}
    distributions = metadata.packages_distributions()
    missing = {}
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for name in imported(script) - set(sys.stdlib_module_names) - {"__future__", "mlkube"}:
            candidates = {canonicalize_name(d) for d in distributions.get(name, [name])}
            if not candidates & provided:
                missing.setdefault(script.name, []).append(name)
    assert missing == {}, f"imported but neither a dependency nor in the benchmark extra: {missing}"


def test_make_bench_installs_the_extra_and_runs_every_script():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r'pip install .*-c \$\(LOCK\) -e "\.\[test,benchmark\]"', makefile)
    assert "BENCHMARKS := $(sort $(wildcard benchmarks/*.py))" in makefile
    assert re.search(r"^bench: \$\(BENCH_STAMP\)", makefile, re.MULTILINE)
