"""Whole-suite settings.

With pytest-xdist (`-n 2`), each folder of process-starting tests (an integration suite) runs on
one worker, and each fault-suite file on one, so its session fixtures (a local cluster, trained
versions) are built once, while another worker runs another folder; unit and static tests are
spread freely (`FolderScheduling`). The folders with the most tests are handed out first.

An integration folder's session fixtures are finished after its last test (pytest would keep them
until the whole run ends): a finished folder's clusters, operators, model servers and routers
would otherwise go on running their timers and scheduled checks beside every later folder, on a
machine of two cores. A folder's tests run one after the other on its worker (or in collection
order without xdist), so each of its fixtures is still built once.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

TESTS = pathlib.Path(__file__).parent


def _group(path: str) -> str | None:
    """The work unit of a test file (its path under the root, as in node ids): its integration
    folder, or the file itself for a fault test; None for the rest."""
    parts = path.split("/")
    if parts[:2] == ["tests", "integration"] and len(parts) > 3:
        return "/".join(parts[:3])
    if parts[:2] == ["tests", "faults"]:
        return path
    return None


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scope scheduling with our work units. (xdist's own `loadgroup` cannot be used: it
    marks a group by rewriting `item._nodeid`, which pytest 9.2 no longer reads, so every test
    went its own way and each folder's cluster was built on both workers.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FolderScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid.split("::", 1)[0]) or nodeid

    return FolderScheduling(config, log)


def _integration_folder(item: pytest.Item | None) -> pathlib.Path | None:
    """The integration folder (``tests/integration/<name>``) an item belongs to, if any."""
    if item is None:
        return None
    parts = pathlib.Path(item.fspath).relative_to(TESTS).parts
    return TESTS.joinpath(*parts[:2]) if parts[0] == "integration" and len(parts) > 2 else None


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of the item's narrower fixtures
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    folder = _integration_folder(item)
    if folder is None or _integration_folder(nextitem) == folder:
        return
    base = folder.relative_to(TESTS.parent).as_posix()  # a conftest's fixtures carry its folder's node id
    # pytest has no public way to finish a fixture early: its fixture manager's registry is read here
    for by_node in item.session._fixturemanager._arg2node2fixturedefs.values():
        for definitions in by_node.values():
            for definition in definitions:
                if definition.scope == "session" and definition.baseid == base and definition.cached_result is not None:
                    definition.finish(item._request)
