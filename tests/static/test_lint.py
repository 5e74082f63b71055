"""The code passes ruff with the rules chosen in pyproject.toml ([tool.ruff]) and is formatted by ruff format."""

import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[2]


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent))
    assert ruff, "ruff is part of the test extra"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "operator", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_code_is_formatted():
    ruff = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent))
    result = subprocess.run(
        [ruff, "format", "--check", "--no-cache", "operator", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, "run `make format`:\n" + result.stdout[-3000:] + result.stderr[-2000:]
