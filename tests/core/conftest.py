"""The core's tests see its exceptions: :class:`~detectors.monitor.Monitor` re-raises instead
of resetting the model (a refactoring slip must fail a test, not just lose an alert). Tests of
the reset itself ask for it with the ``resetting_monitor`` fixture."""

from __future__ import annotations

import pytest

from detectors.monitor import Monitor


@pytest.fixture(autouse=True)
def _core_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Monitor, "reset_on_error", False)


@pytest.fixture
def resetting_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's behaviour: a model whose update raises is reset."""
    monkeypatch.setattr(Monitor, "reset_on_error", True)
