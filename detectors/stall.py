"""Noticing that a stream went quiet: a model stops sending predictions, or its labels stop.

The detector never reads a clock itself. It is told when events arrive (:meth:`observe`) and asked
whether the stream is stalled at a given time (:meth:`check`): event time in ``driftline
replay``, wall-clock time in the live service, so a silent model is noticed while nothing
arrives.

The timeout is either fixed, or learned: ``multiplier`` times the 99th percentile of the last
``history`` gaps between events, clamped to ``[min_timeout_ms, max_timeout_ms]``, once
``min_events`` events were seen. A stall is reported at ``last event + timeout`` (not at the
moment someone checked), so replays and restarts agree on when it began.

Examples
--------
>>> detector = StallDetector(timeout_ms=60_000)
>>> for t in range(0, 600_000, 10_000):  # an event every 10 s
...     _ = detector.observe(t)
>>> detector.check(640_000), detector.drift_detected
(False, False)
>>> detector.check(700_000), detector.drift_detected, detector.stalled_since
(True, True, 650000)
>>> detector.observe(710_000), detector.drift_detected   # events resume: resolved
(True, False)
"""

from __future__ import annotations

from collections import deque
from typing import Any

from detectors.base import Detector, StateError

__all__ = ["StallDetector"]


class StallDetector(Detector):
    """Fires when no event arrived for longer than a timeout; resolves when events resume.

    Parameters
    ----------
    timeout_ms
        A fixed timeout; ``None`` to learn it from the gaps between events.
    min_timeout_ms, max_timeout_ms
        Bounds of a learned timeout.
    multiplier
        Learned timeout = ``multiplier`` x the 99th percentile of recent gaps.
    min_events
        Events needed before a learned timeout arms the detector.
    history
        How many recent gaps the percentile is taken over.
    """

    def __init__(
        self,
        timeout_ms: int | None = None,
        min_timeout_ms: int = 60_000,
        max_timeout_ms: int = 86_400_000,
        multiplier: float = 10.0,
        min_events: int = 20,
        history: int = 256,
    ) -> None:
        if timeout_ms is not None and timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be positive, got {timeout_ms}")
        if not 0 < min_timeout_ms <= max_timeout_ms:
            raise ValueError("need 0 < min_timeout_ms <= max_timeout_ms")
        if multiplier <= 0 or min_events < 1 or history < 1:
            raise ValueError("multiplier, min_events and history must be positive")
        self.timeout_ms = timeout_ms
        self.min_timeout_ms = min_timeout_ms
        self.max_timeout_ms = max_timeout_ms
        self.multiplier = multiplier
        self.min_events = min_events
        self.history = history
        super().__init__()

    def _reset(self) -> None:
        self._last: int | None = None
        self._events = 0
        self._gaps: deque[int] = deque(maxlen=self.history)
        self._learned: int | None = None  # cached; None when the gaps changed
        self._stalled = False
        self._stalled_since: int | None = None
        self._silence = 0

    # -- reading -------------------------------------------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """Whether the stream is stalled."""
        return self._stalled

    @property
    def armed(self) -> bool:
        return self._last is not None and (
            self.timeout_ms is not None or self._events >= self.min_events
        )

    @property
    def timeout(self) -> int:
        """The timeout in force, ms."""
        if self.timeout_ms is not None:
            return self.timeout_ms
        if self._learned is None:
            gaps = sorted(self._gaps)
            p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))] if gaps else 0
            self._learned = int(
                min(self.max_timeout_ms, max(self.min_timeout_ms, self.multiplier * p99))
            )
        return self._learned

    @property
    def statistic(self) -> float:
        """Silence at the last check, ms."""
        return float(self._silence)

    @property
    def threshold(self) -> float:
        return float(self.timeout) if self.armed else 0.0

    @property
    def last_seen(self) -> int | None:
        return self._last

    @property
    def stalled_since(self) -> int | None:
        """When the current (or last) stall began: last event + timeout."""
        return self._stalled_since

    # -- updating ------------------------------------------------------------------------------

    def observe(self, t: int) -> bool:
        """An event arrived at ``t``; return True if this resolved a stall."""
        last = self._last
        if last is None or t > last:
            if last is not None:
                self._gaps.append(t - last)
                self._learned = None
            self._last = t
        elif t < last:
            pass  # late (out-of-order) event: proves life, not a new gap
        else:
            self._gaps.append(0)
            self._learned = None
        self._events += 1
        if self._stalled:
            self._stalled = False
            self._silence = 0
            return True
        return False

    def check(self, now: int) -> bool:
        """Is the stream stalled at ``now``? Return True if this check started a stall."""
        if not self.armed or self._stalled:
            return False
        assert self._last is not None
        self._silence = max(0, now - self._last)
        timeout = self.timeout
        if self._silence > timeout:
            self._stalled = True
            self._stalled_since = self._last + timeout
            return True
        return False

    # -- state ---------------------------------------------------------------------------------

    def _dump(self) -> dict[str, Any]:
        return {
            "last": self._last,
            "events": self._events,
            "gaps": list(self._gaps),
            "stalled": self._stalled,
            "stalled_since": self._stalled_since,
            "silence": self._silence,
        }

    def _load(self, state: dict[str, Any]) -> None:
        gaps = [int(g) for g in state["gaps"]]
        if len(gaps) > self.history or any(g < 0 for g in gaps):
            raise StateError("gaps out of bounds")
        self._gaps = deque(gaps, maxlen=self.history)
        self._last = None if state["last"] is None else int(state["last"])
        self._events = int(state["events"])
        self._stalled = bool(state["stalled"])
        since = state["stalled_since"]
        self._stalled_since = None if since is None else int(since)
        self._silence = int(state["silence"])
