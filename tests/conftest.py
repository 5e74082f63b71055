"""Whole-suite settings.

With pytest-xdist (`-n 2 --dist loadgroup`), each folder of process-starting tests (an integration
suite or the fault suite) runs on one worker, so its session fixtures (a local cluster, trained
versions) are built once, while another worker runs another folder; unit and static tests are
spread freely.
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
