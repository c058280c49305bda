"""When to try an action again: exponential backoff with jitter, capped in count and time.

Pure: the random draw and the elapsed time are arguments, so the schedule's bounds are tested
without sleeping.

Examples
--------
>>> backoff = Backoff(RetryConfig(first_delay=1000, max_delay=8000, jitter=0.0, attempts=5))
>>> [backoff.delay_ms(n, 0.5) for n in range(1, 6)]
[1000, 2000, 4000, 8000, 8000]
>>> backoff.next_delay_ms(attempts_made=5, elapsed_ms=0, draw=0.5) is None  # count cap
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from stream.act.config import RetryConfig

__all__ = ["Attempt", "Backoff", "Verdict"]


class Verdict(Enum):
    """What one attempt of an action came to."""

    #: The effect happened (or was there already).
    DONE = "done"
    #: It may work later: a timeout, a refused connection, HTTP 408/425/429/5xx, an MLflow
    #: server error.
    RETRY = "retry"
    #: It will not work by trying again: HTTP 4xx, an unknown registered model or version.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one attempt; ``detail`` is driftline's own words, safe to log (no secret,
    no response body)."""

    verdict: Verdict
    detail: str = ""
    #: Whether the request may have reached the other side: False only when it certainly did
    #: not (no connection was made), which lets a stop withdraw the step's intent.
    reached: bool = True


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry schedule of :class:`RetryConfig`."""

    config: RetryConfig

    def delay_ms(self, attempts_made: int, draw: float) -> int:
        """The pause after the ``attempts_made``-th failed attempt (1 for the first).

        Nominal ``first_delay * factor**(attempts_made - 1)``, at most ``max_delay``, then
        spread by ``jitter`` with ``draw`` in [0, 1) (0.5: no spread), and never above
        ``max_delay``: retries of many actions that failed together do not arrive together.
        """
        c = self.config
        # Capped before the power can overflow a float.
        exponent = min(attempts_made - 1, 64)
        nominal = min(float(c.max_delay), c.first_delay * c.factor**exponent)
        spread = 1.0 + c.jitter * (2.0 * draw - 1.0)
        return max(1, min(c.max_delay, round(nominal * spread)))

    def next_delay_ms(self, attempts_made: int, elapsed_ms: float, draw: float) -> int | None:
        """The pause before the next attempt, or None to give up: ``attempts`` reached, or the
        next attempt would start after ``give_up_after`` (counted from the first attempt)."""
        c = self.config
        if attempts_made >= c.attempts:
            return None
        delay = self.delay_ms(attempts_made, draw)
        if elapsed_ms + delay > c.give_up_after:
            return None
        return delay
