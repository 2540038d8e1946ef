"""The cluster tier: tests against a real kube-apiserver.

The fixture is ``control_plane`` (tests/fixtures/controlplane.py).

A failing test here gets the tails of the control plane's logs in its report; the
full logs stay in the fixture's directory (pytest keeps the last three runs).
"""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Attach the control plane's log tails to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "control_plane" in getattr(item, "fixturenames", ()):
        cp = item.funcargs.get("control_plane")  # type: ignore[attr-defined]
        if cp is not None:
            report.sections.append(
                ("control plane logs", f"{cp.directory}\n{cp.logs()}")
            )
