"""Whole-suite settings.

With pytest-xdist (`-n 2 --dist loadgroup`), each folder of process-starting tests (an integration
suite or the fault suite) runs on one worker, so its session fixtures (a local cluster, trained
versions) are built once, while another worker runs another folder; unit and static tests are
spread freely.

An integration folder's session fixtures are finished after its last test (pytest would keep them
until the whole run ends): a finished folder's clusters, operators, model servers and routers
would otherwise go on running their timers and scheduled checks beside every later folder, on a
machine of two cores. A folder's tests run one after the other (one xdist group, or collection
order without xdist), so each of its fixtures is still built once.
"""

from __future__ import annotations

import pathlib

import pytest

TESTS = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = pathlib.Path(item.fspath).relative_to(TESTS).parts
        if parts[0] in ("integration", "faults"):
            group = "/".join(parts[:2]) if parts[0] == "integration" and len(parts) > 2 else str(pathlib.Path(*parts))
            item.add_marker(pytest.mark.xdist_group(group))


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
