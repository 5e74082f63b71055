"""constraints.txt, the lock file: exact versions of everything `pip install -e ".[test]"` installs.

`make` installs .venv with it and images/Dockerfile builds the image's wheels with it
(tests/integration/cluster/test_cluster_image.py checks the Dockerfile side); `make lock`
refreshes it. These checks read files and the installed distributions' metadata only.
"""

from __future__ import annotations

import pathlib
import re
import tomllib
from importlib import metadata

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).parents[2]
LOCK = ROOT / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line.strip())
        assert match, f"constraints.txt: {line!r} is not `name==version`"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = match.group(2)
    return pins


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_line_pins_one_exact_version():
    pins = _pins()
    assert len(pins) > 50
    assert "mlkube" not in pins, "the project itself is installed from the tree, never pinned"


def test_every_declared_dependency_is_pinned_within_its_bounds():
    pins = _pins()
    problems = []
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement}: not in constraints.txt (run `make lock`)")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: constraints.txt pins {pins[name]} (run `make lock`)")
    assert problems == []


def _closure() -> set[str]:
    """Every distribution `mlkube[test]` needs here, following requirements with their extras."""
    seen: set[tuple[str, str]] = set()
    todo = [("mlkube", "test")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            environment = {**default_environment(), "extra": extra}
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append((canonicalize_name(requirement.name), ""))
                todo += [(canonicalize_name(requirement.name), e) for e in requirement.extras]
    return {name for name, _ in seen} - {"mlkube"}


def test_the_lock_covers_everything_the_test_extra_pulls_in():
    """A dependency added to pyproject.toml (or a new transitive one) without `make lock` fails here."""
    assert sorted(_closure() - set(_pins())) == []


def test_the_environment_running_these_tests_has_the_locked_versions():
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {
        name: (version, installed[name]) for name, version in _pins().items() if name in installed and installed[name] != version
    }
    assert drift == {}, "the .venv differs from constraints.txt (locked, installed): `make` reinstalls from the lock"


def test_make_installs_from_the_lock_and_can_refresh_it():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK := constraints\.txt$", makefile, re.MULTILINE)
    assert re.search(r"^\$\(STAMP\): pyproject\.toml \$\(LOCK\)$", makefile, re.MULTILINE), "a new lock must reinstall"
    assert 'pip install --quiet -c $(LOCK) -e ".[test]"' in makefile
    assert re.search(r"^lock:", makefile, re.MULTILINE) and "pip freeze --all --exclude-editable" in makefile
