"""`make bench` runs every script in benchmarks/ from a fresh clone: each package a script imports
is a dependency of mlkube or in its `benchmark` extra, which `make bench` installs. The scripts run
with benchmarks/ first on sys.path, so its own modules and packages (baselines/) are local; their
imports are checked too.

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


def local_modules(folder: pathlib.Path) -> set[str]:
    """Names a script run from ``folder`` imports from there: its modules and its packages."""
    return {p.stem for p in folder.glob("*.py")} | {p.parent.name for p in folder.glob("*/__init__.py")}


def not_installed(folder: pathlib.Path) -> dict[str, list[str]]:
    """{file under ``folder``: the non-stdlib, non-local packages it imports that ``make bench`` does not install}."""
    provided = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    provided |= {canonicalize_name(Requirement(r).name) for r in PROJECT["optional-dependencies"]["benchmark"]}
    distributions = metadata.packages_distributions()
    local = local_modules(folder) | {"__future__", "mlkube"}
    missing = {}
    for script in sorted(folder.glob("**/*.py")):
        for name in sorted(imported(script) - set(sys.stdlib_module_names) - local):
            candidates = {canonicalize_name(d) for d in distributions.get(name, [name])}
            if not candidates & provided:
                missing.setdefault(script.relative_to(folder).as_posix(), []).append(name)
    return missing


def test_every_package_a_benchmark_imports_is_installed_by_make_bench():
    assert "baselines" in local_modules(ROOT / "benchmarks")
    missing = not_installed(ROOT / "benchmarks")
    assert missing == {}, f"imported but neither a dependency nor in the benchmark extra: {missing}"


def test_the_check_finds_a_package_not_installed_in_a_script_or_a_local_module(tmp_path):
    (tmp_path / "script.py").write_text("import numpy\nimport helpers\nfrom helpers import tools\nimport notinstalled_a\n")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("")
    (tmp_path / "helpers" / "tools.py").write_text("import json\nimport script\n\ndef f():\n    import notinstalled_b\n")
    assert not_installed(tmp_path) == {"script.py": ["notinstalled_a"], "helpers/tools.py": ["notinstalled_b"]}


def test_make_bench_installs_the_extra_and_runs_every_script():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r'pip install .*-c \$\(LOCK\) -e "\.\[test,benchmark\]"', makefile)
    assert "BENCHMARKS := $(sort $(wildcard benchmarks/*.py))" in makefile
    assert re.search(r"^bench: \$\(BENCH_STAMP\)", makefile, re.MULTILINE)
