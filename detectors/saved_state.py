"""Saved state: every component's record names the layout it was written in.

A model's saved state is one JSON record built from about a dozen components (detectors,
join, metrics, policies, ...), each with its own ``to_state``. Each record carries
``"format"``, its component's layout number: a change of layout bumps the number and teaches
the loader to read the previous one (a committed fixture of every past format must keep
loading, see ``tests/core/test_saved_state_formats.py``), so a renamed key cannot silently
start every model afresh. Records written before layouts were numbered are format 1.

>>> record = stamp(1, {"counts": [1, 2]})
>>> record
{'format': 1, 'counts': [1, 2]}
>>> read_format(record, "join", newest=1)
1
>>> read_format({"format": 7}, "join", newest=1)
Traceback (most recent call last):
...
detectors.base.StateError: join state format 7 is newer than this driftline reads (1)
"""

from __future__ import annotations

from typing import Any

from detectors.base import StateError

__all__ = ["read_format", "stamp"]

FORMAT_KEY = "format"


def stamp(fmt: int, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its layout number first."""
    return {FORMAT_KEY: fmt, **body}


def read_format(state: Any, component: str, newest: int) -> int:
    """The layout number of a component's saved ``state`` (1 if unnumbered); a
    :class:`StateError` if it is not a record, or newer than ``newest``."""
    if not isinstance(state, dict):
        raise StateError(f"{component} state is not a JSON object")
    fmt = state.get(FORMAT_KEY, 1)
    if type(fmt) is not int or fmt < 1:
        raise StateError(f"{component} state format {fmt!r} is not a layout number")
    if fmt > newest:
        raise StateError(
            f"{component} state format {fmt} is newer than this driftline reads ({newest})"
        )
    return fmt
