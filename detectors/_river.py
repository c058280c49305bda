"""Saving and restoring river's ADWIN and Page-Hinkley as plain data (never pickle)."""

from __future__ import annotations

import base64
import math
from typing import Any

from river import drift

from detectors.base import StateError

__all__ = ["dump_adwin", "load_adwin", "dump_page_hinkley", "load_page_hinkley"]

# ADWIN's state is its Rust core's own fixed-layout encoding, about 1.3 KB; anything much larger
# did not come from driftline.
_MAX_ADWIN_STATE_BYTES = 64 * 1024


def dump_adwin(adwin: drift.ADWIN) -> dict[str, Any]:
    return {
        "core": base64.b64encode(adwin._helper.__getstate__()).decode(),
        "detected": bool(adwin._drift_detected),
    }


def load_adwin(adwin: drift.ADWIN, state: dict[str, Any]) -> None:
    raw = base64.b64decode(state["core"], validate=True)
    if len(raw) > _MAX_ADWIN_STATE_BYTES:
        raise StateError(f"ADWIN state of {len(raw)} bytes is too large")
    try:
        adwin._helper.__setstate__(raw)
    except BaseException as exc:  # a Rust panic arrives as a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise StateError(f"ADWIN state does not decode: {type(exc).__name__}") from None
    adwin._drift_detected = bool(state["detected"])


def _finite_or_none(value: float) -> float | None:
    # (As a float: river starts some of these at the int -1, which a restore reads as -1.0.)
    return float(value) if math.isfinite(value) else None


def dump_page_hinkley(ph: drift.PageHinkley) -> dict[str, Any]:
    return {
        "n": ph._x_mean.n,
        "mean": ph._x_mean._mean,
        "sum_increase": ph._sum_increase,
        "sum_decrease": ph._sum_decrease,
        "min_increase": _finite_or_none(ph._min_increase),
        "max_decrease": _finite_or_none(ph._max_decrease),
        "detected": bool(ph._drift_detected),
    }


def load_page_hinkley(ph: drift.PageHinkley, state: dict[str, Any]) -> None:
    ph._x_mean.n = float(state["n"])
    ph._x_mean._mean = float(state["mean"])
    ph._sum_increase = float(state["sum_increase"])
    ph._sum_decrease = float(state["sum_decrease"])
    low, high = state["min_increase"], state["max_decrease"]
    ph._min_increase = float("inf") if low is None else float(low)
    ph._max_decrease = float("-inf") if high is None else float(high)
    ph._drift_detected = bool(state["detected"])
