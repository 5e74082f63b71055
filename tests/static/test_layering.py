"""The layering of ARCHITECTURE.md, enforced by import-linter's contracts in pyproject.toml."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[2]


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(pathlib.Path(sys.executable).parent))
    assert lint, "import-linter is part of the test extra"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_operator_does_not_load_the_ml_stack():
    code = "import sys, mlkube.control.runner, mlkube.control.handlers; print(sorted(m for m in ('sklearn', 'pandas', 'numpy', 'scipy', 'optuna', 'kserve') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
